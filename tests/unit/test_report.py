from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.checks import MEASURED_BY, Check, Outage
from lab.report import Event, Report, iso_utc, vip_move_text

pytestmark = pytest.mark.unit

T0 = 1764072000.0  # 2025-11-25T12:00:00Z


def report(checks: list[Check]) -> Report:
    return Report(
        scenario="active-passive",
        provider="netns",
        profile="guide",
        started_at=T0,
        duration_s=93.4567,
        versions={"pacemaker": "2.1.5", "corosync": "3.1.7"},
        events=[
            Event("crash", "node1", T0 + 30.25, "mysql", 3080, "node2", failed_ops=14, bound_ms=30000),
            Event("freeze", "node2", T0 + 60.0, "rabbitmq", None, None, bound_ms=None),
        ],
        checks=checks,
        notes=["stonith disabled, as the guide writes it"],
    )


PASS = Check("lost-writes:mysql", True, "all 120 acknowledged writes present")
FAIL = Check("vip-holders", False, "1 episodes on 2+ nodes: 192.168.42.101 on [node1, node2] ...")


def test_iso_utc() -> None:
    assert iso_utc(T0) == "2025-11-25T12:00:00.000Z"
    assert iso_utc(T0 + 30.25) == "2025-11-25T12:00:30.250Z"


def test_verdict() -> None:
    assert report([PASS]).verdict == "pass"
    assert report([PASS, FAIL]).verdict == "fail"
    assert report([]).verdict == "fail"  # nothing checked proves nothing


def test_to_dict() -> None:
    d = report([PASS, FAIL]).to_dict()
    assert d["verdict"] == "fail"
    assert d["started_at"] == "2025-11-25T12:00:00.000Z"
    assert d["duration_s"] == 93.457
    assert d["events"][0] == {
        "fault": "crash",
        "target": "node1",
        "at": "2025-11-25T12:00:30.250Z",
        "service": "mysql",
        "downtime_ms": 3080,
        "recovered_on": "node2",
        "failed_ops": 14,
        "bound_ms": 30000,
        "measured_by": MEASURED_BY,
        "indeterminate_ops": 0,
        "probe_gap_ms": None,
        "vip": None,
        "vip_from": None,
        "vip_to": None,
        "floor_ms": None,
        "limit_ms": None,
        "nth": 1,
        "outages": 1,
        "total_downtime_ms": None,
        "flap": False,
    }
    assert d["checks"][1] == {"name": "vip-holders", "passed": False, "detail": FAIL.detail}
    assert d["versions"]["pacemaker"] == "2.1.5"
    assert d["notes"] == ["stonith disabled, as the guide writes it"]


def test_write(tmp_path: Path) -> None:
    path = report([PASS]).write(tmp_path / "runs" / "r1")
    assert path == tmp_path / "runs" / "r1" / "report.json"
    assert json.loads(path.read_text()) == report([PASS]).to_dict()


def test_event_from_outage() -> None:
    o = Outage("mysql", 10.0, 13.08, 3080, failed_ops=5, indeterminate_ops=2)
    e = Event.from_outage("crash", "node1", 10.5, o, recovered_on="node2", bound_ms=5000)
    assert (e.service, e.downtime_ms, e.failed_ops) == ("mysql", 3080, 5)
    assert (e.bound_ms, e.recovered_on, e.at) == (5000, "node2", 10.5)


def test_summary_table() -> None:
    long = Check("placement", False, "x" * 300)
    text = report([PASS, FAIL, long]).summary_table()
    lines = text.splitlines()
    assert lines[0] == "active-passive [netns, profile guide] started 2025-11-25T12:00:00.000Z, 93.5 s"
    assert lines[2].split() == [
        "fault",
        "target",
        "service",
        "downtime_ms",
        "floor_ms",
        "limit_ms",
        "bound_ms",
        "VIP",
        "moved",
        "recovered_on",
    ]
    assert lines[3].split() == ["crash", "node1", "mysql", "3080", "-", "-", "30000", "-", "node2"]
    assert lines[4].split() == ["freeze", "node2", "rabbitmq", "never", "-", "-", "-", "-", "-"]
    # fixed width: the downtime column lines up
    assert lines[2].index("downtime_ms") + len("downtime_ms") == lines[3].index("3080") + 4
    assert lines[6].startswith("pass  lost-writes:mysql")
    assert lines[7].startswith("FAIL  vip-holders")
    assert lines[8].endswith("...") and len(lines[8]) < 140
    assert lines[-1] == "verdict: fail"
    assert report([]).summary_table().splitlines()[-5] == "FAIL  (no checks ran)"


def test_a_flap_row_names_no_vip_move_of_its_own() -> None:
    """The longest outage of a window holds the VIP's move; the window's other outages (flaps) print "-" there,
    not "-->-" (CI's libvirt smoke printed that for the second outage of a crash)."""
    r = report([PASS])
    main = Event("crash", "node2", T0, "mysql", 93479, "node1", vip="192.168.42.101", vip_from=["node2"],
                 vip_to=["node1"], nth=1, outages=2)  # fmt: skip
    flap = Event("crash", "node2", T0, "mysql", 737, None, vip="192.168.42.101", nth=2, outages=2, flap=True)
    r.events = [main, flap]
    rows = r.summary_table().splitlines()[3:5]
    assert rows[0].split()[-2:] == ["node2->node1", "node1"]
    assert rows[1].split() == ["crash", "2/2", "node2", "mysql", "737", "-", "-", "-", "-", "-"]


def test_vip_move_text_names_a_move_and_nothing_for_no_move_or_a_flap() -> None:
    """The one spelling of a VIP move the table, the page, the notes and the bench print."""
    vip = "192.168.42.101"
    assert vip_move_text(vip, ["node2"], ["node1"], False) == "node2->node1"
    assert vip_move_text(vip, ["node1", "node3"], [], False, arrow=" -> ") == "node1+node3 -> -"
    assert vip_move_text(vip, None, None, False) == "-->-"  # a move whose holders were not sampled
    assert vip_move_text(None, ["node2"], ["node1"], False) is None  # no VIP: no move
    assert vip_move_text("", ["node2"], ["node1"], False) is None
    assert vip_move_text(vip, ["node2"], ["node1"], True) is None  # a flap: its window's longest outage holds it
