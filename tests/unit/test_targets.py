"""lab/targets.py: fault target selectors, checked against a scenario and resolved against a (fake) live lab."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping

import pytest

from lab.scenario import SCENARIO_DIR, Scenario, load_scenario
from lab.targets import KINDS, Live, TargetError, check, resolve

pytestmark = pytest.mark.unit

AP = load_scenario("active-passive")
AA = load_scenario("active-active")
AP_VARIANT = load_scenario(SCENARIO_DIR / "variants" / "ap-variant.yaml")
AA_VARIANT = load_scenario(SCENARIO_DIR / "variants" / "aa-variant.yaml")


def node_addresses(scenario: Scenario) -> dict[str, list[str]]:
    """Every node's own addresses, as the provider lists them (plain IPs, no prefix length)."""
    return {n: [str(a) for a in node.addresses.values()] for n, node in scenario.nodes.items()}


def live(
    scenario: Scenario,
    *,
    down: Iterable[str] = (),
    holders: Mapping[str, str | None] | None = None,
    vips: Mapping[str, Iterable[str]] | None = None,  # VIP name -> the nodes that have it configured
    seed: int = 0,
) -> Live:
    down = set(down)
    addrs = node_addresses(scenario)
    for vip, nodes in (vips or {}).items():
        for n in nodes:
            addrs[n].append(str(scenario.vips[vip].address))
    return Live(
        scenario=scenario,
        running=lambda n: n in scenario.nodes and n not in down,
        group_holders=lambda: dict(holders or {}),
        addresses=lambda n: list(addrs.get(n, [])),
        rng=random.Random(seed),
    )


# ------------------------------------------------------------------------------------------- the scenarios
def test_the_scenarios_are_the_ones_the_tests_assume() -> None:
    assert list(AP.nodes) == ["node1", "node2", "client"]
    assert list(AP.networks) == ["ring0", "ring1"]
    assert {v.name: str(v.address) for v in AP.vips.values()} == {
        "mysql": "192.168.42.101",
        "rabbitmq": "192.168.42.100",
    }
    assert sorted({s.group for s in AP.services.values() if s.group}) == ["g_mysql", "g_rabbitmq"]
    assert list(AA.nodes) == ["controller1", "controller2", "controller3", "haproxy1", "haproxy2", "client"]
    assert str(AA.vips["api"].address) == "10.0.0.10"
    assert [n.name for n in AA.nodes_with_role("keepalived")] == ["haproxy1", "haproxy2"]


# ------------------------------------------------------------------------------------------- node names
@pytest.mark.parametrize("node", ["node1", "node2", "client"])
def test_a_node_name_names_itself(node: str) -> None:
    check(node, AP)
    assert resolve(node, live(AP)) == node


def test_a_node_name_resolves_even_when_the_node_is_down() -> None:
    # a crash heal (restart) aims at a node that is not running: a name is a name
    assert resolve("node2", live(AP, down={"node2"})) == "node2"


@pytest.mark.parametrize("selector", ["node3", "controller1", "Node1", "holder:", "vip:", "role:"])
def test_an_unknown_node_is_refused_with_the_nodes_and_kinds_to_use(selector: str) -> None:
    with pytest.raises(TargetError) as e:
        check(selector, AP)
    msg = str(e.value)
    assert f"no node {selector!r}" in msg
    assert "node1, node2, client" in msg
    for kind in KINDS:
        assert kind in msg


def test_resolve_checks_the_selector_first() -> None:
    with pytest.raises(TargetError, match="no node 'node9'"):
        resolve("node9", live(AP))


def test_target_error_is_a_value_error() -> None:
    assert issubclass(TargetError, ValueError)


# ------------------------------------------------------------------------------------------- holder:GROUP
@pytest.mark.parametrize(
    ("holders", "selector", "node"),
    [
        ({"g_mysql": "node1", "g_rabbitmq": "node1"}, "holder:g_mysql", "node1"),
        ({"g_mysql": "node2", "g_rabbitmq": "node1"}, "holder:g_mysql", "node2"),
        ({"g_mysql": "node2", "g_rabbitmq": "node1"}, "holder:g_rabbitmq", "node1"),
    ],
)
def test_holder_is_the_node_running_the_group_now(holders: dict[str, str], selector: str, node: str) -> None:
    check(selector, AP)
    assert resolve(selector, live(AP, holders=holders)) == node


@pytest.mark.parametrize("holders", [{}, {"g_mysql": None}, {"g_rabbitmq": "node1"}, {"g_mysql": ""}])
def test_holder_of_a_group_running_nowhere_is_a_target_error(holders: dict[str, str | None]) -> None:
    with pytest.raises(TargetError, match="holder:g_mysql: g_mysql is not running whole on any node"):
        resolve("holder:g_mysql", live(AP, holders=holders))


def test_holder_of_an_unknown_group_names_the_groups() -> None:
    with pytest.raises(TargetError) as e:
        check("holder:g_mysqld", AP)
    assert "no group 'g_mysqld'" in str(e.value)
    assert "g_mysql, g_rabbitmq" in str(e.value)


def test_holder_on_a_scenario_without_groups_says_there_are_none() -> None:
    with pytest.raises(TargetError, match=r"no group 'g_mysql' in the scenario; use one of: -"):
        check("holder:g_mysql", AA)


# ------------------------------------------------------------------------------------------- service:NAME
@pytest.mark.parametrize(
    ("scenario", "holders", "selector", "node"),
    [
        (AP, {"g_mysql": "node2", "g_rabbitmq": "node1"}, "service:mysql", "node2"),
        (AP, {"g_mysql": "node2", "g_rabbitmq": "node1"}, "service:rabbitmq", "node1"),
        (AP_VARIANT, {"grp_db": "db-b", "grp_broker": "db-a"}, "service:mysql", "db-b"),
        (AP_VARIANT, {"grp_db": "db-b", "grp_broker": "db-a"}, "service:rabbitmq", "db-a"),
    ],
)
def test_service_is_the_node_running_the_services_group(
    scenario: Scenario, holders: dict[str, str], selector: str, node: str
) -> None:
    check(selector, scenario)
    assert resolve(selector, live(scenario, holders=holders)) == node


def test_service_whose_group_runs_nowhere_is_a_target_error() -> None:
    with pytest.raises(TargetError, match="service:mysql: grp_db is not running whole on any node"):
        resolve("service:mysql", live(AP_VARIANT, holders={"grp_broker": "db-a"}))


@pytest.mark.parametrize(
    ("scenario", "selector"), [(AP, "service:mariadb"), (AP, "service:g_mysql"), (AA, "service:galera")]
)
def test_service_not_in_a_group_is_refused(scenario: Scenario, selector: str) -> None:
    with pytest.raises(TargetError, match=f"{selector}: no service '{selector[8:]}' runs in a group"):
        check(selector, scenario)


# ------------------------------------------------------------------------------------------- vip:NAME
@pytest.mark.parametrize(
    ("vips", "selector", "node"),
    [
        ({"mysql": ["node1"], "rabbitmq": ["node2"]}, "vip:mysql", "node1"),
        ({"mysql": ["node1"], "rabbitmq": ["node2"]}, "vip:rabbitmq", "node2"),
        ({"mysql": ["node2"]}, "vip:mysql", "node2"),
    ],
)
def test_vip_is_the_node_holding_its_address(vips: dict[str, list[str]], selector: str, node: str) -> None:
    check(selector, AP)
    assert resolve(selector, live(AP, vips=vips)) == node


def test_vip_on_two_nodes_is_a_target_error_naming_both() -> None:
    with pytest.raises(TargetError) as e:
        resolve("vip:mysql", live(AP, vips={"mysql": ["node1", "node2"]}))
    msg = str(e.value)
    assert "192.168.42.101" in msg and "node1, node2" in msg and "not one node" in msg


def test_vip_on_no_node_is_a_target_error() -> None:
    with pytest.raises(TargetError, match=r"vip:mysql: VIP 192\.168\.42\.101 is held by no node"):
        resolve("vip:mysql", live(AP, vips={"rabbitmq": ["node1"]}))


def test_vip_counts_only_running_nodes() -> None:
    # a node that is down (or whose addresses are stale) does not hold the VIP
    assert resolve("vip:mysql", live(AP, vips={"mysql": ["node1", "node2"]}, down={"node1"})) == "node2"
    with pytest.raises(TargetError, match="no node"):
        resolve("vip:mysql", live(AP, vips={"mysql": ["node1"]}, down={"node1"}))


def test_vip_matches_the_address_exactly_not_a_prefix() -> None:
    weird = live(AP)
    addrs = {"node1": ["192.168.42.1010"], "node2": ["192.168.42.101"], "client": []}
    weird.addresses = lambda n: addrs.get(n, [])
    assert resolve("vip:mysql", weird) == "node2"


def test_an_unknown_vip_names_the_vips() -> None:
    with pytest.raises(TargetError) as e:
        check("vip:db", AP)
    assert "no VIP 'db'" in str(e.value) and "mysql, rabbitmq" in str(e.value)


# ------------------------------------------------------------------------------------------- master
@pytest.mark.parametrize("node", ["haproxy1", "haproxy2"])
def test_master_is_the_keepalived_node_holding_the_vip(node: str) -> None:
    check("master", AA)
    assert resolve("master", live(AA, vips={"api": [node]})) == node


def test_master_with_the_vip_on_both_haproxy_nodes_is_a_target_error() -> None:
    with pytest.raises(TargetError, match=r"master: VIP 10\.0\.0\.10 is held by haproxy1, haproxy2"):
        resolve("master", live(AA, vips={"api": ["haproxy1", "haproxy2"]}))


def test_master_with_the_vip_nowhere_is_a_target_error() -> None:
    with pytest.raises(TargetError, match=r"master: VIP 10\.0\.0\.10 is held by no node"):
        resolve("master", live(AA))


def test_master_on_a_scenario_without_keepalived_is_refused() -> None:
    with pytest.raises(TargetError, match="master: the scenario has no keepalived node"):
        check("master", AP)


def test_master_takes_no_argument() -> None:
    with pytest.raises(TargetError):
        check("master:haproxy2", AA)


# ------------------------------------------------------------------------------------------- role:ROLE:N
@pytest.mark.parametrize(
    ("scenario", "selector", "node"),
    [
        (AA, "role:galera:1", "controller1"),
        (AA, "role:galera:2", "controller2"),
        (AA, "role:galera:3", "controller3"),
        (AA, "role:haproxy:2", "haproxy2"),
        (AA, "role:keepalived:1", "haproxy1"),
        (AA, "role:client:1", "client"),
        (AP, "role:pacemaker:1", "node1"),
        (AP, "role:pacemaker:2", "node2"),
        (AP, "role:mysql:2", "node2"),
    ],
)
def test_role_n_is_the_nth_node_with_the_role_in_scenario_order(scenario: Scenario, selector: str, node: str) -> None:
    check(selector, scenario)
    assert resolve(selector, live(scenario)) == node


def test_role_n_does_not_depend_on_what_is_running() -> None:
    assert resolve("role:galera:2", live(AA, down={"controller2"})) == "controller2"


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("role:galera", "write role:galera:N with N from 1 to 3"),
        ("role:galera:0", "write role:galera:N with N from 1 to 3"),
        ("role:galera:4", "write role:galera:N with N from 1 to 3"),
        ("role:galera:-1", "write role:galera:N with N from 1 to 3"),
        ("role:galera:two", "write role:galera:N with N from 1 to 3"),
        ("role:haproxy:3", "write role:haproxy:N with N from 1 to 2"),
        ("role:pacemaker:1", "no node has the role pacemaker"),
        ("role:controller:1", "unknown role 'controller'"),
    ],
)
def test_bad_role_selectors_are_refused(selector: str, message: str) -> None:
    with pytest.raises(TargetError) as e:
        check(selector, AA)
    assert message in str(e.value)
    assert str(e.value).startswith(selector)


def test_an_unknown_role_lists_the_known_roles() -> None:
    with pytest.raises(TargetError) as e:
        check("random:db", AP)
    for role in ("client", "galera", "keepalived", "mysql", "pacemaker", "rabbitmq"):
        assert role in str(e.value)


def test_a_non_ascii_digit_index_is_a_target_error() -> None:
    with pytest.raises(TargetError):
        check("role:galera:\u00b2", AA)


# ------------------------------------------------------------------------------------------- random:ROLE
def test_random_is_the_same_node_for_the_same_seed() -> None:
    for seed in range(20):
        first = resolve("random:pacemaker", live(AP, seed=seed))
        again = resolve("random:pacemaker", live(AP, seed=seed))
        assert first == again
        assert first == random.Random(seed).choice(["node1", "node2"])


def test_random_draws_every_running_node_over_seeds() -> None:
    drawn = {resolve("random:galera", live(AA, seed=seed)) for seed in range(100)}
    assert drawn == {"controller1", "controller2", "controller3"}


def test_random_draws_only_running_nodes() -> None:
    assert {resolve("random:pacemaker", live(AP, seed=s, down={"node1"})) for s in range(50)} == {"node2"}
    drawn = {resolve("random:galera", live(AA, seed=s, down={"controller2"})) for s in range(50)}
    assert drawn == {"controller1", "controller3"}


def test_random_draws_from_the_lab_rng_so_a_run_is_repeatable() -> None:
    lv = live(AA, seed=42)
    seq = [resolve("random:galera", lv) for _ in range(10)]
    lv2 = live(AA, seed=42)
    assert [resolve("random:galera", lv2) for _ in range(10)] == seq


def test_random_with_no_running_node_is_a_target_error() -> None:
    with pytest.raises(TargetError, match="random:pacemaker: no node with the role pacemaker is running"):
        resolve("random:pacemaker", live(AP, down={"node1", "node2"}))


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("random:pacemaker:1", "write random:pacemaker (no index)"),
        ("random:galera", "no node has the role galera"),
        ("random:nodes", "unknown role 'nodes'"),
        ("random:", "no node 'random:'"),
    ],
)
def test_bad_random_selectors_are_refused(selector: str, message: str) -> None:
    with pytest.raises(TargetError) as e:
        check(selector, AP)
    assert message in str(e.value)


# ------------------------------------------------------------------------------------------- kinds
@pytest.mark.parametrize("selector", ["host:node1", "node1:ring0", "group:g_mysql", "HOLDER:g_mysql", "vips:mysql"])
def test_an_unknown_kind_is_refused_naming_the_kinds(selector: str) -> None:
    with pytest.raises(TargetError) as e:
        check(selector, AP)
    msg = str(e.value)
    assert "unknown selector kind" in msg
    assert ", ".join(KINDS) in msg


# ------------------------------------------------------------------------------------------- the variants
def test_every_kind_resolves_on_the_active_passive_variant() -> None:
    sc = AP_VARIANT
    lv = live(sc, holders={"grp_db": "db-b", "grp_broker": "db-a"}, vips={"db": ["db-b"], "broker": ["db-a"]})
    assert resolve("db-a", lv) == "db-a"
    assert resolve("holder:grp_db", lv) == "db-b"
    assert resolve("holder:grp_broker", lv) == "db-a"
    assert resolve("vip:db", lv) == "db-b"
    assert resolve("vip:broker", lv) == "db-a"
    assert resolve("role:pacemaker:2", lv) == "db-b"
    assert resolve("role:client:1", lv) == "tester"
    assert resolve("random:pacemaker", lv) in {"db-a", "db-b"}
    for guide_name in ("node1", "holder:g_mysql", "vip:mysql", "master"):
        with pytest.raises(TargetError):
            check(guide_name, sc)


def test_every_kind_resolves_on_the_active_active_variant() -> None:
    sc = AA_VARIANT
    lv = live(sc, vips={"front": ["lb-b"]})
    assert resolve("master", lv) == "lb-b"
    assert resolve("vip:front", lv) == "lb-b"
    assert resolve("role:galera:3", lv) == "ctl-c"
    assert resolve("role:keepalived:1", lv) == "lb-a"
    assert resolve("random:galera", lv) in {"ctl-a", "ctl-b", "ctl-c"}
    with pytest.raises(TargetError, match="no VIP 'api'"):
        check("vip:api", sc)


@pytest.mark.parametrize("scenario", [AP, AA, AP_VARIANT, AA_VARIANT], ids=lambda s: s.name)
def test_every_node_and_role_index_of_every_scenario_checks(scenario: Scenario) -> None:
    for n in scenario.nodes:
        check(n, scenario)
    for role in {r for node in scenario.nodes.values() for r in node.roles}:
        have = scenario.nodes_with_role(role)
        check(f"random:{role}", scenario)
        for i, node in enumerate(have, 1):
            check(f"role:{role}:{i}", scenario)
            assert resolve(f"role:{role}:{i}", live(scenario)) == node.name
        with pytest.raises(TargetError):
            check(f"role:{role}:{len(have) + 1}", scenario)
    for vip in scenario.vips:
        check(f"vip:{vip}", scenario)
