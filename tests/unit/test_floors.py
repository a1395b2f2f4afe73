import dataclasses
import json
import time
from pathlib import Path

import pytest

from lab.checks.availability import outage
from lab.checks.floor import floor_check
from lab.floors import (
    LIMIT_FACTOR,
    Floor,
    answer_ms,
    chain,
    first_answer,
    last_answer,
    log_time,
    start_requests,
    stop_ms,
)
from lab.history import History, Op
from lab.report import Event

pytestmark = pytest.mark.unit

DATA = Path(__file__).parent / "data"
OPS = (DATA / "crm_mon_ops.xml").read_text()  # real crm_mon -1 -o output
MEMBERS = ["p_ip_mysql", "p_fs_mysql", "p_mysql"]


def test_chain_counts_every_member_before_the_service_not_the_service() -> None:
    links = chain(OPS, MEMBERS, "node1", None)
    assert links is not None and set(links) == {"node1:p_ip_mysql:start", "node1:p_fs_mysql:start"}
    assert links["node1:p_ip_mysql:start"] == 185


def test_chain_is_unknown_where_the_new_node_never_started_the_members() -> None:
    assert chain(OPS, MEMBERS, "node2", None) is None


def test_an_orderly_move_adds_the_old_nodes_stops_it_recorded() -> None:
    links = chain(OPS, MEMBERS, "node1", "node2")  # node2 recorded no stops here: they add nothing
    assert links == chain(OPS, MEMBERS, "node1", None)


def _line(epoch: float, text: str) -> str:
    stamp = time.strftime("%b %d %H:%M:%S", time.localtime(epoch)) + f".{round(epoch % 1 * 1000):03d}"
    return f"{stamp} node2 pacemaker-controld  [76] (do_lrm_rsc_op) \tnotice: {text} | op_key=x"


def test_pacemaker_log_times_keep_their_milliseconds() -> None:
    t = 1796125394.383
    assert log_time(_line(t, "x"), 2026) == pytest.approx(t, abs=0.0005)
    assert log_time("not a log line", 2026) is None


def test_start_requests_of_one_resource_on_one_node_since_the_fault() -> None:
    t = 1796125394.0
    lines = [
        _line(t - 60, "Requesting local execution of start operation for p_mysql on node2"),  # an earlier trial
        _line(t + 3.2, "Requesting local execution of start operation for p_mysql on node2"),
        _line(t + 3.3, "Requesting local execution of start operation for p_mysql on node1"),
        _line(t + 3.4, "Requesting local execution of start operation for p_mysql_x on node2"),
    ]
    assert start_requests(lines, "p_mysql", "node2", since=t) == [pytest.approx(t + 3.2, abs=0.001)]


def _ok(t: float, f: str = "write", service: str = "mysql") -> Op:
    return Op(t, f"{service}-writer", "ok", f, service=service)


def test_the_answer_is_the_first_ack_after_the_last_request_before_it() -> None:
    h = History([_ok(99.0), Op(101.0, "w", "fail", "write", service="mysql"), _ok(103.25), _ok(104.0)])
    assert first_answer(h, "mysql", 100.0) == 103.25
    assert answer_ms(h, "mysql", [100.0, 102.0]) == (102.0, 1250)  # a retried start counts from the retry
    assert answer_ms(h, "mysql", []) is None
    assert answer_ms(History([_ok(99.0)]), "mysql", [100.0]) is None  # never answered: no floor
    assert first_answer(h, "rabbitmq", 100.0) is None


def test_a_tcp_accept_is_no_answer_the_service_gave() -> None:
    """uwsgi accepts on Keystone's socket before Keystone's app has loaded: the probe's connect is not the answer
    that ends the outage (a floor counted to it read 297 ms under a 6.9 s standby of p_keystone)."""
    h = History([_ok(100.2, "connect", "keystone"), _ok(104.5, "issue", "keystone")])
    assert first_answer(h, "keystone", 100.0) == 104.5
    assert last_answer(h, "keystone", 104.0) is None


def test_an_orderly_stop_counts_from_the_clients_last_answer_to_its_result() -> None:
    h = History([_ok(99.0), _ok(100.5), Op(100.7, "w", "fail", "write", service="mysql"), _ok(104.0)])
    assert last_answer(h, "mysql", 101.9) == 100.5
    assert stop_ms(h, "mysql", [101.9, 130.0]) == (101.9, 1400)
    assert stop_ms(h, "mysql", []) is None
    assert stop_ms(h, "mysql", [98.0]) is None  # no answer before it: nothing measured


def test_floor_total_and_round_trip() -> None:
    chain_ms = {"node2:p_ip_mysql:start": 120, "node2:p_fs_mysql:start": 90}
    f = Floor("mysql", 2200, chain_ms, answer_ms=410, requested_at=5.0, stop_ms=300, stopped_at=1.0, method="how")
    assert f.total_ms == 3120
    assert Floor.from_dict(json.loads(json.dumps(f.to_dict()))) == f


# Floors and histories of a whole active/passive suite run on netns (tests/unit/data/floors/<trial>/), as the trials
# wrote them: every floor must be at or below the downtime measured from the same history.
RECORDED = sorted((DATA / "floors").glob("*/floors.json"))


def test_a_recorded_suite_run_is_there() -> None:
    assert RECORDED, "tests/unit/data/floors/ holds no recorded trial"


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.parent.name)
def test_every_recorded_floor_is_at_or_below_its_downtime(path: Path) -> None:
    h = History.load(path.parent / "history.jsonl")
    for d in json.loads(path.read_text()):
        fl = Floor.from_dict({k: v for k, v in d.items() if k not in ("since", "max_gap_s", "stall_s", "fs")})
        how = {"fs": tuple(d["fs"]), "max_gap_s": d["max_gap_s"], "stall_s": d.get("stall_s")}
        down = outage(h, fl.service, since=d["since"], **how).downtime_ms
        assert down is not None, f"{path.parent.name}: {fl.service} never recovered"
        # the parts taken from the history are measured again here by today's rules, not trusted
        if fl.requested_at is not None:
            answer = answer_ms(h, fl.service, [fl.requested_at])
            assert answer is not None, f"{path.parent.name}: {fl.service} never answered after its start request"
            fl = dataclasses.replace(fl, answer_ms=answer[1])
        if fl.stopped_at is not None:
            stop = stop_ms(h, fl.service, [fl.stopped_at])
            assert stop is not None, f"{path.parent.name}: {fl.service} had no answer before its stop"
            fl = dataclasses.replace(fl, stop_ms=stop[1])
        assert fl.total_ms <= down, f"{path.parent.name}: {fl.service} floor {fl.to_dict()} > downtime {down} ms"


def _event(down: int | None, floor: Floor, resolution_ms: int = 3050) -> Event:
    ev = Event("crash", "node1", 0.0, "mysql", down, "node2")
    ev.floor_ms, ev.limit_ms = floor.total_ms, floor.limit_ms(resolution_ms)
    return ev


def test_the_floor_check_holds_a_downtime_between_floor_and_limit() -> None:
    fl = Floor("mysql", 2200, {"n:p_ip:start": 100}, answer_ms=400, requested_at=1.0, method="m")
    assert fl.limit_ms(3050) == 2700 * LIMIT_FACTOR + 3050
    assert floor_check("t: ", _event(3300, fl), fl).passed
    assert not floor_check("t: ", _event(2500, fl), fl).passed  # faster than the timers allow: a blind probe
    assert not floor_check("t: ", _event(9000, fl), fl).passed  # past the limit: something waited
    assert not floor_check("t: ", _event(None, fl), fl).passed


def test_an_incomplete_floor_checks_the_lower_side_only() -> None:
    fl = Floor("mysql", 2200, {}, method="m", complete=False)
    assert fl.limit_ms(3050) is None
    c = floor_check("t: ", _event(60_000, fl), fl)
    assert c.passed and "limit" not in c.detail.split(";")[0]


def test_flaps_are_limited_together() -> None:
    """Three outages of 5 s after one fault each pass a limit of 8.45 s alone; together they are 15 s lost."""
    fl = Floor("mysql", 2200, {"n:p_ip:start": 100}, answer_ms=400, requested_at=1.0, method="m")
    ev = _event(5000, fl)
    ev.outages, ev.total_downtime_ms = 3, 15000
    c = floor_check("t: ", ev, fl)
    assert not c.passed and "the longest of 3 outages, together 15000 ms" in c.detail
    ev.total_downtime_ms = 5600  # one real failover and two short stalls: within the limit
    assert floor_check("t: ", ev, fl).passed
    ev.total_downtime_ms = None  # one of them never ended
    assert not floor_check("t: ", ev, fl).passed
