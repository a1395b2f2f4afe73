"""Quorum options (lab/scenario_quorum.py) and the quorum { } section provision/corosync.py renders from them.

A scenario corosync would refuse, or would run with a feature quietly turned off, is one ScenarioError naming the
field and the fix; a scenario that sets none of them renders the corosync.conf it rendered before they existed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.scenario import SCENARIO_DIR, ScenarioError, load_scenario, parse_scenario
from lab.scenario_quorum import QDevice
from provision import corosync
from provision.context import Context
from tests.unit.scenario_edits import DELETE, edited

pytestmark = pytest.mark.unit

DATA = Path(__file__).parent / "data" / "quorum"
GOLDEN = DATA / "golden"  # corosync.conf of every shipped scenario and profile, rendered before the quorum options
FULL_SIZE = yaml.safe_load((DATA / "full-size.yaml").read_text())
QDEVICE = yaml.safe_load((DATA / "qdevice.yaml").read_text())
PATH = Path("scenarios/quorum-test.yaml")
ARBITER = {"roles": ["qnetd"], "addresses": {"ring0": "192.168.42.20"}}


def changed(base: dict[str, Any], *edits: tuple[str, Any]) -> dict[str, Any]:
    """A deep copy of `base` with each (dotted.path, value) set, or deleted for DELETE."""
    return edited(base, *edits)


def render(data: dict[str, Any], profile: str | None = None) -> str:
    s = parse_scenario(data, PATH)
    return corosync.config(Context(s, profile or s.default_profile, None, None))  # type: ignore[arg-type]


def section(conf: str, name: str) -> list[str]:
    """The stripped lines of a top-level `name { ... }` section, nested blocks included."""
    lines = conf.splitlines()
    start = lines.index(f"{name} {{")
    end = next(i for i in range(start, len(lines)) if lines[i] == "}")
    return [ln.strip() for ln in lines[start + 1 : end]]


def keys(lines: list[str]) -> dict[str, str]:
    return dict(ln.split(": ", 1) for ln in lines if ": " in ln)


def shipped() -> list[tuple[Path, str]]:
    files = sorted(SCENARIO_DIR.glob("*.yaml")) + sorted((SCENARIO_DIR / "variants").glob("*.yaml"))
    return [(p, prof) for p in files for prof in load_scenario(p).profiles]


# --- the shipped scenarios are as they were ----------------------------------------------------------


@pytest.mark.parametrize(("path", "profile"), shipped(), ids=lambda v: v if isinstance(v, str) else v.stem)
def test_shipped_scenarios_render_the_corosync_conf_they_rendered_before(path: Path, profile: str) -> None:
    s = load_scenario(path)
    ctx = Context(s, profile, None, None)  # type: ignore[arg-type]
    golden = GOLDEN / f"{path.stem}-{profile}.conf"
    if not ctx.cluster_nodes:  # no corosync on this topology: nothing was rendered, and no quorum option is set
        assert not golden.exists()
        assert s.options(profile).qdevice is None and s.options(profile).expected_votes is None
        return

    def norm(text: str) -> list[str]:
        return [re.sub(r"\s+", " ", ln).strip() for ln in text.splitlines() if ln.strip()]

    assert norm(corosync.config(ctx)) == norm(golden.read_text())


def test_every_shipped_cluster_scenario_has_its_golden_file() -> None:
    rendered = {f"{p.stem}-{prof}.conf" for p, prof in shipped() if load_scenario(p).nodes_with_role("pacemaker")}
    assert rendered == {p.name for p in GOLDEN.glob("*.conf")}


# --- rendering ----------------------------------------------------------------------------------------


def test_full_size_cluster_renders_the_guides_votequorum() -> None:
    conf = render(FULL_SIZE)
    q = keys(section(conf, "quorum"))
    assert q == {
        "provider": "corosync_votequorum",
        "expected_votes": "7",
        "wait_for_all": "1",
        "last_man_standing": "1",
        "last_man_standing_window": "10000",
    }
    nodes = section(conf, "nodelist")
    assert [ln for ln in nodes if ln.startswith("nodeid:")] == [f"nodeid: {i}" for i in range(1, 8)]
    ring0 = [ln.split(": ")[1] for ln in nodes if ln.startswith("ring0_addr:")]
    ring1 = [ln.split(": ")[1] for ln in nodes if ln.startswith("ring1_addr:")]
    assert ring0 == [f"192.168.42.{i}" for i in range(1, 8)] and ring1 == [f"10.0.42.{i}" for i in range(1, 8)]
    assert "192.168.42.10" not in conf  # the client is no member
    assert not any(ln.startswith(("two_node", "auto_tie_breaker", "device")) for ln in section(conf, "quorum"))


def test_profile_overrides_quorum_options() -> None:
    data = changed(FULL_SIZE, ("profiles.hardened.last_man_standing", False))
    data["profiles"]["hardened"].pop("no_quorum_policy")
    q = keys(section(render(data, "hardened"), "quorum"))
    assert "last_man_standing" not in q and "last_man_standing_window" not in q and q["wait_for_all"] == "1"


def test_wait_for_all_off_is_written_where_corosync_would_default_it_on() -> None:
    data = changed(QDEVICE, ("cluster.qdevice", DELETE), ("cluster.two_node", True), ("cluster.wait_for_all", False))
    assert keys(section(render(data), "quorum")) == {
        "provider": "corosync_votequorum",
        "two_node": "1",
        "wait_for_all": "0",
    }


def test_qdevice_renders_the_net_model_with_the_arbiters_address() -> None:
    s = parse_scenario(QDEVICE, PATH)
    assert s.options().qdevice == QDevice(
        "arbiter", "ffsplit", "net", timeout_ms=10000, sync_timeout_ms=30000, tls="off"
    )
    lines = section(render(QDEVICE), "quorum")
    assert lines == [
        "provider: corosync_votequorum",
        "device {",
        "model: net",
        "votes: 1",  # ffsplit gives exactly one vote (corosync-qdevice(8))
        "timeout: 10000",
        "sync_timeout: 30000",
        "net {",
        "host: 192.168.42.20",
        "algorithm: ffsplit",
        "tls: off",
        "}",
        "}",
    ]


def test_qdevice_lms_leaves_the_votes_to_corosync() -> None:
    data = changed(QDEVICE, ("cluster.qdevice", {"host": "arbiter", "algorithm": "lms"}))
    q = section(render(data), "quorum")
    assert "algorithm: lms" in q and not any(ln.startswith(("votes", "timeout", "tls")) for ln in q)


def test_qdevice_with_expected_votes_counts_its_vote() -> None:
    data = changed(QDEVICE, ("cluster.expected_votes", 3))
    assert keys(section(render(data), "quorum"))["expected_votes"] == "3"


@pytest.mark.parametrize(
    ("atb", "written"), [("lowest", "lowest"), ("highest", "highest"), (["node3", "node1"], "3 1")]
)
def test_auto_tie_breaker_writes_node_ids(atb: Any, written: str) -> None:
    q = keys(section(render(changed(FULL_SIZE, ("cluster.auto_tie_breaker", atb))), "quorum"))
    assert q["auto_tie_breaker"] == "1" and q["auto_tie_breaker_node"] == written


def test_auto_tie_breaker_false_is_off() -> None:
    q = section(render(changed(FULL_SIZE, ("cluster.auto_tie_breaker", False))), "quorum")
    assert not any(ln.startswith("auto_tie_breaker") for ln in q)


# --- one clear error per mistake ---------------------------------------------------------------------

WITH_ARBITER = changed(FULL_SIZE, ("nodes.arbiter", ARBITER), ("cluster.last_man_standing", False))
WITH_ARBITER["cluster"].pop("last_man_standing_window_ms")
ARBITER_QDEVICE = ("cluster.qdevice", {"host": "arbiter"})
NO_QDEVICE = changed(QDEVICE, ("cluster.qdevice", DELETE))
ACTIVE_ACTIVE = yaml.safe_load((SCENARIO_DIR / "active-active.yaml").read_text())

CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("two-node-seven-voters", changed(FULL_SIZE, ("cluster.two_node", True)), "cluster.two_node",
     "7 nodes have the pacemaker role"),
    ("atb-lms-odd-no-wfa", changed(FULL_SIZE, ("cluster.wait_for_all", False), ("cluster.auto_tie_breaker", "lowest")),
     "cluster.auto_tie_breaker", "corosync refuses to start"),
    ("atb-odd-no-wfa", changed(WITH_ARBITER, ("cluster.wait_for_all", False), ("cluster.auto_tie_breaker", "lowest")),
     "cluster.auto_tie_breaker", "corosync turns auto_tie_breaker off"),
    ("atb-two-node", changed(NO_QDEVICE, ("cluster.two_node", True), ("cluster.auto_tie_breaker", "lowest")),
     "cluster.auto_tie_breaker", "corosync turns two_node off"),
    ("atb-names-a-client", changed(FULL_SIZE, ("cluster.auto_tie_breaker", ["node1", "client"])),
     "cluster.auto_tie_breaker", "'client' is not a cluster node"),
    ("atb-names-nobody", changed(FULL_SIZE, ("cluster.auto_tie_breaker", ["node9"])),
     "cluster.auto_tie_breaker", "'node9' is not a cluster node"),
    ("atb-twice", changed(FULL_SIZE, ("cluster.auto_tie_breaker", ["node1", "node1"])),
     "cluster.auto_tie_breaker", "'node1' is listed twice"),
    ("atb-true", changed(FULL_SIZE, ("cluster.auto_tie_breaker", True)), "cluster.auto_tie_breaker",
     "not a tie breaker"),
    ("qdevice-two-node", changed(QDEVICE, ("cluster.two_node", True)), "cluster.qdevice", "together with two_node"),
    ("qdevice-lms", changed(WITH_ARBITER, ("cluster.last_man_standing", True), ARBITER_QDEVICE),
     "cluster.qdevice", "together with last_man_standing"),
    ("qdevice-atb", changed(WITH_ARBITER, ("cluster.auto_tie_breaker", "lowest"), ARBITER_QDEVICE),
     "cluster.qdevice", "together with auto_tie_breaker"),
    ("qdevice-host-unknown", changed(QDEVICE, ("cluster.qdevice.host", "witness")), "cluster.qdevice.host",
     "'witness' is not a node of this scenario"),
    ("qdevice-host-in-cluster", changed(QDEVICE, ("cluster.qdevice.host", "node2")), "cluster.qdevice.host",
     "node2 is a cluster node"),
    ("qdevice-host-not-qnetd", changed(QDEVICE, ("cluster.qdevice.host", "client")), "cluster.qdevice.host",
     "client has no role qnetd"),
    ("qdevice-host-off-the-rings",
     changed(QDEVICE, ("networks.other", {"cidr": "198.51.100.0/24", "purpose": "arbiter"}),
             ("nodes.arbiter.addresses", {"other": "198.51.100.20"})),
     "cluster.qdevice.host", "no address on a network every cluster node is on"),
    ("qdevice-algorithm", changed(QDEVICE, ("cluster.qdevice.algorithm", "2nodelms")), "cluster.qdevice.algorithm",
     "not one of ffsplit, lms"),
    ("qdevice-model", changed(QDEVICE, ("cluster.qdevice.model", "disk")), "cluster.qdevice.model", "not one of net"),
    ("qdevice-timeout-clamped", changed(QDEVICE, ("cluster.qdevice.timeout_ms", 1000)), "cluster.qdevice.timeout_ms",
     "between 1250 and 150000"),
    ("qdevice-sync-timeout-refused", changed(QDEVICE, ("cluster.qdevice.sync_timeout_ms", 200_000)),
     "cluster.qdevice.sync_timeout_ms", "between 1250 and 150000"),
    ("qdevice-tls", changed(QDEVICE, ("cluster.qdevice.tls", "maybe")), "cluster.qdevice.tls", "not one of on"),
    ("qdevice-tls-required", changed(QDEVICE, ("cluster.qdevice.tls", "required")), "cluster.qdevice.tls",
     "the lab runs qnetd without TLS"),
    ("qdevice-active-passive",
     changed(QDEVICE, ("topology", "active-passive"), ("nodes.node1.roles", ["pacemaker", "mysql"]),
             ("nodes.node2.roles", ["pacemaker", "mysql"])),
     "cluster.qdevice", "the active-passive playbook starts no corosync-qnetd"),
    ("qdevice-unknown-key", changed(QDEVICE, ("cluster.qdevice.votes", 1)), "cluster.qdevice.votes", "unknown key"),
    ("qdevice-no-host", changed(QDEVICE, ("cluster.qdevice.host", DELETE)), "cluster.qdevice.host",
     "missing required field"),
    ("qdevice-lms-expected", changed(QDEVICE, ("cluster.qdevice.algorithm", "lms"), ("cluster.expected_votes", 3)),
     "cluster.expected_votes", "lms its default votes"),
    ("qdevice-expected-below", changed(QDEVICE, ("cluster.expected_votes", 2)), "cluster.expected_votes",
     "2 is below the 3 votes there are (2 cluster nodes + 1 qdevice vote)"),
    ("expected-below", changed(FULL_SIZE, ("cluster.expected_votes", 5)), "cluster.expected_votes",
     "5 is below the 7 votes there are"),
    ("expected-above-wfa", changed(FULL_SIZE, ("cluster.expected_votes", 8)), "cluster.expected_votes",
     "wait_for_all would wait forever"),
    ("expected-unreachable", changed(FULL_SIZE, ("cluster.wait_for_all", False), ("cluster.expected_votes", 15)),
     "cluster.expected_votes", "makes quorum 8, more than the 7 votes"),
    ("expected-zero", changed(FULL_SIZE, ("cluster.expected_votes", 0)), "cluster.expected_votes",
     "expected a whole number >= 1"),
    ("window-without-lms", changed(FULL_SIZE, ("cluster.last_man_standing", False)),
     "cluster.last_man_standing_window_ms", "corosync ignores the window"),
    ("wfa-not-bool", changed(FULL_SIZE, ("cluster.wait_for_all", 1)), "cluster.wait_for_all", "expected true or false"),
    ("quorum-without-corosync", changed(ACTIVE_ACTIVE, ("cluster.expected_votes", 3)), "cluster.expected_votes",
     "no node has the pacemaker role"),
    ("profile-two-node", changed(FULL_SIZE, ("profiles.hardened.two_node", True)), "profiles.hardened.two_node",
     "7 nodes have the pacemaker role"),
    ("profile-qdevice-lms", changed(WITH_ARBITER, ("cluster.last_man_standing", True),
                                    ("profiles.hardened.qdevice", {"host": "arbiter"})),
     "profiles.hardened.qdevice", "together with last_man_standing"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "field", "problem"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_quorum_mistake_is_one_clear_error(data: dict[str, Any], field: str, problem: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, PATH)
    err = info.value
    assert (err.field, err.path) == (field, str(PATH)), str(err)
    assert problem in err.problem, str(err)
    assert err.fix and str(PATH) in str(err) and field in str(err)


def test_the_valid_bases_parse() -> None:
    for data in (FULL_SIZE, QDEVICE, WITH_ARBITER, NO_QDEVICE):
        parse_scenario(data, PATH)


def test_atb_on_an_odd_cluster_with_wait_for_all_is_fine() -> None:
    s = parse_scenario(changed(WITH_ARBITER, ("cluster.auto_tie_breaker", "highest")), PATH)
    assert s.options().auto_tie_breaker == "highest"


def test_a_profile_may_drop_the_clusters_qdevice() -> None:
    data = changed(QDEVICE, ("profiles", {"bare": {"description": "no arbiter", "qdevice": None}}), ("profile", "bare"))
    assert parse_scenario(data, PATH).options().qdevice is None
