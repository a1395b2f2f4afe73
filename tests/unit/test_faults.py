"""lab/faults.py: the fault vocabulary, built from CLI strings, checked against a scenario, and applied/healed
against a fake provider that records every call (no daemon, no namespace, no nft)."""

from __future__ import annotations

import dataclasses
import json
import random
from typing import Any

import pytest

from lab.faults import FAULTS, SERVICES, Fault, FaultError, PacketLoss, Partition, catalogue, make
from lab.scenario import SCENARIO_DIR, Scenario, load_scenario
from lab.targets import Live

pytestmark = pytest.mark.unit

AP = load_scenario("active-passive")
AA = load_scenario("active-active")
AP_VARIANT = load_scenario(SCENARIO_DIR / "variants" / "ap-variant.yaml")


# ------------------------------------------------------------------------------------------- the fakes
class FakeProvider:
    """Records what a fault asks of the provider; holds the nftables tables a real one would."""

    def __init__(self, calls: list[tuple[Any, ...]], addresses: dict[str, list[str]], down: set[str]) -> None:
        self.calls = calls
        self.tables: dict[str, list[str]] = {}
        self._addresses = addresses
        self._down = down

    # what Live looks at
    def is_running(self, node: str) -> bool:
        return node in self._addresses and node not in self._down

    def addresses(self, node: str) -> list[str]:
        return list(self._addresses.get(node, []))

    # node faults
    def crash(self, node: str) -> None:
        self.calls.append(("crash", node))

    def poweroff(self, node: str) -> None:
        self.calls.append(("poweroff", node))

    def reset(self, node: str) -> None:
        self.calls.append(("reset", node))

    def freeze(self, node: str) -> None:
        self.calls.append(("freeze", node))

    def thaw(self, node: str) -> None:
        self.calls.append(("thaw", node))

    def run(self, node: str, cmd: str, *, check: bool = False, timeout: float = 60.0, **_: Any) -> Any:
        self.calls.append(("run", node, cmd, check, timeout))
        return dataclasses.make_dataclass("Result", ["rc", "stdout", "stderr"])(0, "", "")

    # service faults
    def kill_service(self, node: str, process: str) -> None:
        self.calls.append(("kill_service", node, process))

    def stop_service(self, node: str, process: str) -> None:
        self.calls.append(("stop_service", node, process))

    # network faults
    def cut(self, node: str, network: str) -> None:
        self.calls.append(("cut", node, network))

    def restore(self, node: str, network: str) -> None:
        self.calls.append(("restore", node, network))

    def port(self, node: str, network: str) -> str:
        return f"{node}-{network}"

    def filter_add(self, name: str, rules: list[str]) -> None:
        self.calls.append(("filter_add", name, list(rules)))
        self.tables[name] = list(rules)

    def filter_remove(self, name: str) -> None:
        self.calls.append(("filter_remove", name))
        self.tables.pop(name, None)


class FakeEnv:
    """A FaultEnv: the fake provider, a real scenario, and a live view the test sets up."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        holders: dict[str, str | None] | None = None,
        vips: dict[str, list[str]] | None = None,
        down: set[str] | None = None,
        seed: int = 0,
    ) -> None:
        self.scenario = scenario
        self.calls: list[tuple[Any, ...]] = []
        self.holders = dict(holders or {})
        addrs = {n: [str(a) for a in node.addresses.values()] for n, node in scenario.nodes.items()}
        for vip, nodes in (vips or {}).items():
            for n in nodes:
                addrs[n].append(str(scenario.vips[vip].address))
        self.provider = FakeProvider(self.calls, addrs, set(down or ()))
        self.rng = random.Random(seed)
        self.lives = 0

    def live(self) -> Live:
        self.lives += 1
        return Live(
            self.scenario, self.provider.is_running, lambda: dict(self.holders), self.provider.addresses, self.rng
        )

    def restart_node(self, node: str) -> None:
        self.calls.append(("restart_node", node))

    def rejoin(self, node: str) -> None:
        self.calls.append(("rejoin", node))

    def start_service(self, node: str, service: str) -> None:
        self.calls.append(("start_service", node, service))


def aimed(f: Fault, env: FakeEnv) -> Fault:
    """What the Trial does: check against the scenario, then resolve against the live lab."""
    f.check(env.scenario)
    return f.resolve(env)


# ------------------------------------------------------------------------------------------- building
# Every fault with the parameters `halab fault LAB NAME node1 --opt VALUE` passes: all strings.
CLI_PARAMS: dict[str, dict[str, str]] = {
    "crash": {},
    "poweroff": {},
    "reset": {},
    "freeze": {},
    "standby": {},
    "kill_service": {"service": "mysql"},
    "stop_service": {"service": "rabbitmq"},
    "start_service": {"service": "mysql"},
    "cut": {"network": "ring1"},
    "partition": {"network": "ring0", "others": "node2,client", "one_way": "true"},
    "packet_loss": {"network": "ring0", "percent": "30", "direction": "out"},
}


def test_the_cli_params_cover_every_registered_fault() -> None:
    assert set(CLI_PARAMS) == set(FAULTS)


@pytest.mark.parametrize("name", list(CLI_PARAMS))
def test_every_fault_builds_from_cli_strings_and_is_plain_data(name: str) -> None:
    f = make(name, "node1", **CLI_PARAMS[name])
    assert type(f) is FAULTS[name]
    assert f.name == name and f.target == "node1" and f.chosen_by is None
    f.check(AP)
    assert set(f.params()) == set(CLI_PARAMS[name])
    text = json.dumps({"label": f.label, "params": f.params(), "describe": f.describe()})
    back = json.loads(text)
    assert back["params"] == f.params()
    assert f.describe().startswith(f"{name} node1")
    assert f.label == (f"{name}:{CLI_PARAMS[name]['service']}" if "service" in CLI_PARAMS[name] else name)
    # the history records name, target and params(): the same fault comes back from them
    assert make(name, f.target, **back["params"]) == f


@pytest.mark.parametrize("name", list(CLI_PARAMS))
def test_every_fault_is_a_frozen_hashable_value(name: str) -> None:
    f = make(name, "node1", **CLI_PARAMS[name])
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.target = "node2"  # type: ignore[misc]
    assert hash(f) == hash(make(name, "node1", **CLI_PARAMS[name]))


def test_the_strings_are_coerced_to_the_fields_types() -> None:
    p = make("partition", "node1", network="ring0", others="node2, client", one_way="true")
    assert p == Partition(target="node1", network="ring0", others=("node2", "client"), one_way=True)
    assert make("packet_loss", "node1", network="ring0", percent="30").percent == 30
    assert make("packet_loss", "node1", network="ring0", percent=30).percent == 30
    assert make("partition", "node1", network="ring0", others=["node2"]).others == ("node2",)
    assert make("partition", "node1", network="ring0", others="node2,,").others == ("node2",)
    assert make("partition", "node1", network="ring0", others="").others == ()


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("True", True), ("yes", True), ("1", True), (True, True)]
    + [("false", False), ("FALSE", False), ("no", False), ("0", False), (False, False)],
)
def test_bools_from_the_cli_and_yaml(value: Any, expected: bool) -> None:
    assert make("partition", "node1", network="ring0", one_way=value).one_way is expected


def test_defaults_apply_when_a_param_is_left_out() -> None:
    p = make("partition", "node1", network="ring0")
    assert p.others == () and p.one_way is False
    assert make("packet_loss", "node1", network="ring0", percent="5").direction == "both"


def test_label_names_the_service() -> None:
    assert make("kill_service", "node1", service="rabbitmq").label == "kill_service:rabbitmq"
    assert make("stop_service", "node1", service="mysql").label == "stop_service:mysql"
    assert make("crash", "node1").label == "crash"
    assert make("partition", "node1", network="ring0").label == "partition"


def test_describe_lists_the_params() -> None:
    f = make("partition", "node1", network="ring0", others="node2,client", one_way="yes")
    assert f.describe() == "partition node1 network=ring0 others=node2,client one_way=True"
    assert make("crash", "node2").describe() == "crash node2"
    assert make("kill_service", "node1", service="mysql").describe() == "kill_service node1 service=mysql"


def test_unknown_fault_names_the_faults() -> None:
    with pytest.raises(FaultError) as e:
        make("crash_node", "node1")
    msg = str(e.value)
    assert "unknown fault 'crash_node'" in msg
    for name in FAULTS:
        assert name in msg


def test_unknown_param_names_what_the_fault_takes() -> None:
    with pytest.raises(FaultError, match=r"^crash: unknown parameter network; crash takes none$"):
        make("crash", "node1", network="ring0")
    with pytest.raises(FaultError) as e:
        make("partition", "node1", network="ring0", oneway="true")
    takes = "network [others=()] [one_way=False] [side=()]"
    assert str(e.value) == f"partition: unknown parameter oneway; partition takes {takes}"


def test_missing_param_names_what_the_fault_takes() -> None:
    with pytest.raises(FaultError, match=r"^cut: missing parameter network; cut takes network$"):
        make("cut", "node1")
    with pytest.raises(FaultError) as e:
        make("packet_loss", "node1", network="ring0")
    assert str(e.value) == (
        "packet_loss: missing parameter percent; packet_loss takes network percent [direction='both']"
    )
    with pytest.raises(FaultError, match="kill_service: missing parameter service"):
        make("kill_service", "node1")


@pytest.mark.parametrize("value", ["lots", "30%", "3.5", "", None])
def test_a_bad_int_is_a_fault_error(value: Any) -> None:
    with pytest.raises(FaultError) as e:
        make("packet_loss", "node1", network="ring0", percent=value)
    assert str(e.value) == f"packet_loss: percent: {value!r} is not a whole number"


def test_a_fractional_number_is_not_a_whole_number() -> None:
    with pytest.raises(FaultError, match="is not a whole number"):
        make("packet_loss", "node1", network="ring0", percent=12.5)


@pytest.mark.parametrize("value", ["maybe", "on", "2", "", None])
def test_a_bad_bool_is_a_fault_error(value: Any) -> None:
    with pytest.raises(FaultError) as e:
        make("partition", "node1", network="ring0", one_way=value)
    assert str(e.value) == f"partition: one_way: {value!r} is not true or false"


def test_others_must_be_a_list() -> None:
    with pytest.raises(FaultError, match="partition: others: write a list of node selectors"):
        make("partition", "node1", network="ring0", others=5)


def test_fault_error_is_a_value_error() -> None:
    assert issubclass(FaultError, ValueError)


def test_the_catalogue_lists_every_fault_with_its_signature_and_help() -> None:
    cat = catalogue()
    json.dumps(cat)
    assert [name for name, _, _ in cat] == list(FAULTS)
    sig = {name: s for name, s, _ in cat}
    assert sig["crash"] == ""
    assert sig["kill_service"] == "service"
    assert sig["cut"] == "network"
    assert sig["partition"] == "network [others=()] [one_way=False] [side=()]"
    assert sig["packet_loss"] == "network percent [direction='both']"
    for name, _, help_ in cat:
        assert help_ and help_ == FAULTS[name].help


# ------------------------------------------------------------------------------------------- check()
def refused(f: Fault, scenario: Scenario = AP) -> str:
    with pytest.raises(FaultError) as e:
        f.check(scenario)
    return str(e.value)


@pytest.mark.parametrize("name", list(CLI_PARAMS))
def test_check_refuses_an_unknown_node_for_every_fault(name: str) -> None:
    msg = refused(make(name, "node3", **CLI_PARAMS[name]))
    assert msg.startswith(f"{name}: target no node 'node3'")
    assert "node1, node2, client" in msg


@pytest.mark.parametrize("name", list(CLI_PARAMS))
def test_check_refuses_a_bad_selector_for_every_fault(name: str) -> None:
    assert "no group 'g_db'" in refused(make(name, "holder:g_db", **CLI_PARAMS[name]))


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("cut", {"network": "ring2"}),
        ("partition", {"network": "ring2"}),
        ("packet_loss", {"network": "ring2", "percent": "10"}),
    ],
)
@pytest.mark.parametrize("target", ["node1", "all"])
def test_check_refuses_an_unknown_network(name: str, params: dict[str, str], target: str) -> None:
    msg = refused(make(name, target, **params))
    assert msg.startswith(f"{name}: ")
    if target == "all" and name != "packet_loss":
        assert "no node 'all'" in msg
    else:
        assert msg.startswith(f"{name}: no network 'ring2'; use one of: ring0, ring1")
        assert "management" in msg and "replication" in msg  # a network may be named by its purpose


def test_check_refuses_a_cut_of_a_nic_the_node_does_not_have() -> None:
    assert refused(make("cut", "client", network="ring1")) == "cut: client has no NIC on ring1"
    make("cut", "client", network="ring0").check(AP)
    make("cut", "node1", network="ring1").check(AP)
    make("cut", "holder:g_mysql", network="ring1").check(AP)  # a selector is checked when resolved


@pytest.mark.parametrize(
    "f",
    [
        make("partition", "client", network="ring1"),
        make("packet_loss", "client", network="ring1", percent="10"),
        make("partition", "node1", network="ring1", others="client"),
    ],
    ids=["partition-target", "packet_loss-target", "partition-others"],
)
def test_check_refuses_a_network_fault_on_a_nic_the_node_does_not_have(f: Fault) -> None:
    assert "no NIC on ring1" in refused(f)


def test_check_refuses_an_empty_network() -> None:
    assert "no network ''" in refused(make("partition", "node1", network=""))


@pytest.mark.parametrize("percent", ["0", "101", "-5", "1000"])
def test_check_refuses_a_percent_out_of_range(percent: str) -> None:
    f = make("packet_loss", "node1", network="ring0", percent=percent)
    assert refused(f) == f"packet_loss: percent {int(percent)} is not between 1 and 100"


@pytest.mark.parametrize("percent", ["1", "50", "100"])
def test_check_accepts_a_percent_in_range(percent: str) -> None:
    make("packet_loss", "node1", network="ring0", percent=percent).check(AP)
    make("packet_loss", "all", network="ring1", percent=percent).check(AP)


@pytest.mark.parametrize("direction", ["inout", "IN", "", "egress"])
def test_check_refuses_a_bad_direction(direction: str) -> None:
    f = make("packet_loss", "node1", network="ring0", percent="10", direction=direction)
    assert refused(f) == f"packet_loss: direction {direction!r}: use in, out or both"


@pytest.mark.parametrize("direction", ["in", "out"])
def test_check_refuses_a_direction_on_a_whole_network(direction: str) -> None:
    f = make("packet_loss", "all", network="ring0", percent="10", direction=direction)
    assert refused(f) == "packet_loss: on a whole network the direction is both; name a node for in or out"
    make("packet_loss", "node1", network="ring0", percent="10", direction=direction).check(AP)


@pytest.mark.parametrize("name", ["kill_service", "stop_service", "start_service"])
@pytest.mark.parametrize("service", ["mysqld", "mariadb", "MySQL", "nova-api", ""])
def test_check_refuses_an_unknown_service(name: str, service: str) -> None:
    msg = refused(make(name, "node1", service=service))
    assert msg == f"{name}: unknown service {service!r}; use one of: {', '.join(SERVICES)}"


@pytest.mark.parametrize("service", SERVICES)
def test_check_accepts_every_known_service(service: str) -> None:
    make("kill_service", "node1", service=service).check(AP)


def test_check_refuses_bad_partition_others() -> None:
    assert refused(make("partition", "node1", network="ring0", others="node2,node9")).startswith(
        "partition: others: no node 'node9'"
    )
    assert "no VIP 'db'" in refused(make("partition", "node1", network="ring0", others="vip:db"))
    make("partition", "node1", network="ring0", others="vip:mysql,client").check(AP)


def test_check_works_on_other_scenarios() -> None:
    make("partition", "db-a", network="back").check(AP_VARIANT)
    assert "no network 'ring0'" in refused(make("partition", "db-a", network="ring0"), AP_VARIANT)
    make("packet_loss", "all", network="mgmt", percent="20").check(AA)
    make("kill_service", "master", service="haproxy").check(AA)
    assert "no keepalived node" in refused(make("kill_service", "master", service="haproxy"), AP)


# ------------------------------------------------------------------------------------------- networks by purpose
@pytest.mark.parametrize(
    ("scenario", "purpose", "network"),
    [
        (AP, "management", "ring0"),
        (AP, "replication", "ring1"),
        (AP_VARIANT, "replication", "back"),
        (AA, "management", "mgmt"),
    ],
)
def test_a_network_may_be_named_by_its_purpose(scenario: Scenario, purpose: str, network: str) -> None:
    node = next(iter(scenario.nodes))
    env = FakeEnv(scenario)
    cut = aimed(make("cut", node, network=purpose), env)
    assert cut.network == network  # type: ignore[attr-defined]
    cut.apply(env)
    cut.heal(env)
    assert env.calls == [("cut", node, network), ("restore", node, network)]
    env.calls.clear()
    loss = aimed(make("packet_loss", node, network=purpose, percent="10", direction="out"), env)
    assert loss.network == network  # type: ignore[attr-defined]
    loss.apply(env)
    assert env.provider.tables == {loss.table: [f"iifname {q(f'{node}-{network}')} numgen random mod 100 < 10 drop"]}  # type: ignore[attr-defined]
    whole = aimed(make("packet_loss", "all", network=purpose, percent="10"), env)
    assert whole.network == network  # type: ignore[attr-defined]
    # the same fault by name or by purpose is the same table: healing either heals it
    assert whole.table == aimed(make("packet_loss", "all", network=network, percent="10"), env).table  # type: ignore[attr-defined]


def test_a_cut_by_purpose_still_needs_the_nic() -> None:
    assert refused(make("cut", "client", network="replication")) == "cut: client has no NIC on ring1"


def test_a_partition_by_purpose_defaults_to_every_other_node_on_that_network() -> None:
    r = aimed(make("partition", "node1", network="management"), FakeEnv(AP))
    assert (r.network, r.others) == ("ring0", ("node2", "client"))  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------------- apply / heal
NODE_AND_SERVICE_FAULTS = [
    ("crash", {}, [("crash", "node1")], [("restart_node", "node1")]),
    ("poweroff", {}, [("poweroff", "node1")], [("restart_node", "node1")]),
    ("reset", {}, [("reset", "node1")], [("rejoin", "node1")]),  # it reboots by itself: heal starts the cluster
    ("freeze", {}, [("freeze", "node1")], [("thaw", "node1")]),
    (
        "standby",
        {},
        [("run", "node1", "crm node standby node1", True, 60)],
        [("run", "node1", "crm node online node1", True, 60)],
    ),
    (
        "kill_service",
        {"service": "mysql"},
        [("kill_service", "node1", "mariadbd")],
        [("start_service", "node1", "mysql")],
    ),
    (
        "kill_service",
        {"service": "rabbitmq"},
        [("kill_service", "node1", "beam.smp")],
        [("start_service", "node1", "rabbitmq")],
    ),
    (
        "kill_service",
        {"service": "pacemaker"},
        [("kill_service", "node1", "pacemakerd")],
        [("start_service", "node1", "pacemaker")],
    ),
    (
        "kill_service",
        {"service": "corosync"},
        [("kill_service", "node1", "corosync")],
        [("start_service", "node1", "corosync")],
    ),
    (
        "stop_service",
        {"service": "mysql"},
        [("stop_service", "node1", "mariadbd")],
        [("start_service", "node1", "mysql")],
    ),
    (
        "stop_service",
        {"service": "rabbitmq"},
        [("stop_service", "node1", "beam.smp")],
        [("start_service", "node1", "rabbitmq")],
    ),
    ("start_service", {"service": "mysql"}, [("start_service", "node1", "mysql")], []),
    ("cut", {"network": "ring1"}, [("cut", "node1", "ring1")], [("restore", "node1", "ring1")]),
    ("cut", {"network": "ring0"}, [("cut", "node1", "ring0")], [("restore", "node1", "ring0")]),
]


def test_the_apply_table_covers_every_non_filter_fault() -> None:
    assert {name for name, *_ in NODE_AND_SERVICE_FAULTS} == set(FAULTS) - {"partition", "packet_loss"}


@pytest.mark.parametrize(("name", "params", "applied", "healed"), NODE_AND_SERVICE_FAULTS)
def test_apply_and_heal_call_the_provider_and_env(
    name: str, params: dict[str, str], applied: list[tuple[Any, ...]], healed: list[tuple[Any, ...]]
) -> None:
    env = FakeEnv(AP)
    f = aimed(make(name, "node1", **params), env)
    f.apply(env)
    assert env.calls == applied
    env.calls.clear()
    f.heal(env)
    assert env.calls == healed


@pytest.mark.parametrize(
    ("service", "process"),
    [("galera", "mariadbd"), ("haproxy", "haproxy"), ("keepalived", "keepalived"), ("memcached", "memcached")],
)
def test_service_faults_on_active_active_kill_the_services_process(service: str, process: str) -> None:
    env = FakeEnv(AA)
    f = aimed(make("kill_service", "role:galera:3", service=service), env)
    f.apply(env)
    f.heal(env)
    assert env.calls == [("kill_service", "controller3", process), ("start_service", "controller3", service)]


def test_a_selector_is_resolved_to_the_node_then_applied_and_healed_there() -> None:
    env = FakeEnv(AP, holders={"g_mysql": "node2", "g_rabbitmq": "node1"})
    f = make("kill_service", "holder:g_mysql", service="mysql")
    r = aimed(f, env)
    assert r.target == "node2" and r.chosen_by == "holder:g_mysql"
    assert r == dataclasses.replace(f, target="node2")  # chosen_by does not make it another fault
    assert r.describe() == "kill_service node2 (holder:g_mysql) service=mysql"
    assert json.dumps(r.params()) == '{"service": "mysql"}'
    r.apply(env)
    env.holders = {"g_mysql": "node1"}  # the group moved: heal still goes to the node that was hit
    r.heal(env)
    assert env.calls == [("kill_service", "node2", "mariadbd"), ("start_service", "node2", "mysql")]


def test_resolving_twice_keeps_the_first_selector() -> None:
    env = FakeEnv(AP, vips={"mysql": ["node1"]})
    r = make("crash", "vip:mysql").resolve(env)
    assert (r.target, r.chosen_by) == ("node1", "vip:mysql")
    again = r.resolve(env)
    assert (again.target, again.chosen_by) == ("node1", "vip:mysql")


def test_a_node_name_resolves_to_itself_without_a_via() -> None:
    r = make("freeze", "node2").resolve(FakeEnv(AP))
    assert (r.target, r.chosen_by) == ("node2", "node2")
    assert r.describe() == "freeze node2"


def test_a_selector_that_names_no_node_now_is_a_fault_error() -> None:
    with pytest.raises(FaultError, match="^kill_service: holder:g_mysql: g_mysql is not running whole on any node"):
        make("kill_service", "holder:g_mysql", service="mysql").resolve(FakeEnv(AP))
    with pytest.raises(FaultError, match=r"^crash: vip:mysql: VIP 192\.168\.42\.101 is held by node1, node2"):
        make("crash", "vip:mysql").resolve(FakeEnv(AP, vips={"mysql": ["node1", "node2"]}))


def test_random_targets_follow_the_env_seed_and_skip_stopped_nodes() -> None:
    f = make("crash", "random:galera")
    first = [f.resolve(FakeEnv(AA, seed=s)).target for s in range(30)]
    assert first == [f.resolve(FakeEnv(AA, seed=s)).target for s in range(30)]
    picked = {f.resolve(FakeEnv(AA, seed=s, down={"controller1"})).target for s in range(30)}
    assert picked == {"controller2", "controller3"}


# ------------------------------------------------------------------------------------------- partition
def q(*ports: str) -> str:
    return "{ " + ", ".join(f'"{p}"' for p in ports) + " }"


@pytest.mark.parametrize(
    ("network", "others"),
    [("ring0", ("node2", "client")), ("ring1", ("node2",))],
)
def test_partition_default_others_are_every_other_node_on_the_network(network: str, others: tuple[str, ...]) -> None:
    env = FakeEnv(AP)
    r = aimed(make("partition", "node1", network=network), env)
    assert isinstance(r, Partition)
    assert r.others == others
    assert r.params() == {"network": network, "others": list(others), "one_way": False}
    json.dumps(r.params())


def test_partition_drops_both_ways() -> None:
    env = FakeEnv(AP)
    r = aimed(make("partition", "node1", network="ring0"), env)
    r.apply(env)
    assert env.calls == [
        (
            "filter_add",
            r.table,
            [
                f"iifname {q('node1-ring0')} oifname {q('node2-ring0', 'client-ring0')} drop",
                f"iifname {q('node2-ring0', 'client-ring0')} oifname {q('node1-ring0')} drop",
            ],
        )
    ]
    env.calls.clear()
    r.heal(env)
    assert env.calls == [("filter_remove", r.table)]
    assert env.provider.tables == {}


@pytest.mark.parametrize("one_way", ["true", "yes", "1", True])
def test_a_one_way_partition_drops_target_to_others_only(one_way: Any) -> None:
    env = FakeEnv(AP)
    r = aimed(make("partition", "node1", network="ring1", one_way=one_way), env)
    r.apply(env)
    assert env.provider.tables == {r.table: [f"iifname {q('node1-ring1')} oifname {q('node2-ring1')} drop"]}


def test_partition_others_are_selectors_resolved_now() -> None:
    env = FakeEnv(AP, holders={"g_mysql": "node1"}, vips={"mysql": ["node2"]})
    r = aimed(make("partition", "holder:g_mysql", network="ring0", others="vip:mysql"), env)
    assert (r.target, r.chosen_by, r.others) == ("node1", "holder:g_mysql", ("node2",))
    r.apply(env)
    assert env.provider.tables[r.table] == [
        f"iifname {q('node1-ring0')} oifname {q('node2-ring0')} drop",
        f"iifname {q('node2-ring0')} oifname {q('node1-ring0')} drop",
    ]


def test_partition_others_that_name_no_node_now_is_a_fault_error() -> None:
    with pytest.raises(FaultError, match="^partition: others: holder:g_rabbitmq: g_rabbitmq is not running"):
        aimed(make("partition", "node1", network="ring0", others="holder:g_rabbitmq"), FakeEnv(AP))


@pytest.mark.parametrize(
    ("target", "others"),
    [("node1", "node2,node1"), ("node1", "node1"), ("holder:g_mysql", "node1,client"), ("node2", "vip:mysql")],
)
def test_a_node_on_both_sides_is_refused(target: str, others: str) -> None:
    env = FakeEnv(AP, holders={"g_mysql": "node1"}, vips={"mysql": ["node2"]})
    with pytest.raises(FaultError, match=r"^partition: node[12] is on both sides$"):
        aimed(make("partition", target, network="ring0", others=others), env)
    assert env.calls == []


def test_partition_on_active_active_cuts_one_node_from_the_rest() -> None:
    env = FakeEnv(AA, vips={"api": ["haproxy1"]})
    r = aimed(make("partition", "master", network="mgmt"), env)
    assert r.target == "haproxy1"
    assert r.others == ("controller1", "controller2", "controller3", "haproxy2", "client")


def test_two_partitions_have_their_own_tables_and_heal_on_their_own() -> None:
    env = FakeEnv(AP)
    p0 = aimed(make("partition", "node1", network="ring0"), env)
    p1 = aimed(make("partition", "node1", network="ring1"), env)
    p2 = aimed(make("partition", "node2", network="ring1", one_way="true"), env)
    loss = aimed(make("packet_loss", "node1", network="ring0", percent="10"), env)
    tables = [p0.table, p1.table, p2.table, loss.table]  # type: ignore[attr-defined]
    assert len(set(tables)) == 4
    for f in (p0, p1, p2, loss):
        f.apply(env)
    assert set(env.provider.tables) == set(tables)
    env.calls.clear()
    p1.heal(env)
    assert env.calls == [("filter_remove", p1.table)]  # type: ignore[attr-defined]
    assert set(env.provider.tables) == {p0.table, p2.table, loss.table}  # type: ignore[attr-defined]
    p0.heal(env)
    loss.heal(env)
    assert set(env.provider.tables) == {p2.table}  # type: ignore[attr-defined]


def test_partition_one_way_and_both_ways_are_different_tables() -> None:
    env = FakeEnv(AP)
    both = aimed(make("partition", "node1", network="ring1"), env)
    one = aimed(make("partition", "node1", network="ring1", one_way="true"), env)
    assert both.table != one.table  # type: ignore[attr-defined]


def test_a_table_is_a_short_stable_name_of_the_resolved_fault() -> None:
    env = FakeEnv(AP, holders={"g_mysql": "node1"})
    r = aimed(make("partition", "holder:g_mysql", network="ring0"), env)
    again = aimed(make("partition", "node1", network="ring0"), FakeEnv(AP))
    assert r.table == again.table  # type: ignore[attr-defined]
    assert r.table.startswith("part_") and len(r.table) <= 32  # type: ignore[attr-defined]
    assert r.table.replace("_", "").isalnum()  # type: ignore[attr-defined]


def test_a_partition_rebuilt_from_the_history_heals_its_own_table() -> None:
    env = FakeEnv(AP)
    r = aimed(make("partition", "node1", network="ring0"), env)
    r.apply(env)
    recorded = json.loads(json.dumps({"name": r.name, "target": r.target, "params": r.params()}))
    back = make(recorded["name"], recorded["target"], **recorded["params"])
    assert back == r
    back.heal(env)
    assert env.provider.tables == {}


# ------------------------------------------------------------------------------------------- packet loss
@pytest.mark.parametrize(
    ("direction", "rules"),
    [
        ("out", [f"iifname {q('node1-ring0')} numgen random mod 100 < 30 drop"]),
        ("in", [f"oifname {q('node1-ring0')} numgen random mod 100 < 30 drop"]),
        (
            "both",
            [
                f"iifname {q('node1-ring0')} numgen random mod 100 < 30 drop",
                f"oifname {q('node1-ring0')} numgen random mod 100 < 30 drop",
            ],
        ),
    ],
)
def test_packet_loss_on_a_node_by_direction(direction: str, rules: list[str]) -> None:
    env = FakeEnv(AP)
    r = aimed(make("packet_loss", "node1", network="ring0", percent="30", direction=direction), env)
    r.apply(env)
    assert env.calls == [("filter_add", r.table, rules)]  # type: ignore[attr-defined]
    env.calls.clear()
    r.heal(env)
    assert env.calls == [("filter_remove", r.table)]  # type: ignore[attr-defined]
    assert env.provider.tables == {}


def test_packet_loss_default_direction_is_both() -> None:
    env = FakeEnv(AP)
    r = aimed(make("packet_loss", "node2", network="ring1", percent="7"), env)
    r.apply(env)
    assert env.provider.tables[r.table] == [  # type: ignore[attr-defined]
        f"iifname {q('node2-ring1')} numgen random mod 100 < 7 drop",
        f"oifname {q('node2-ring1')} numgen random mod 100 < 7 drop",
    ]


@pytest.mark.parametrize(
    ("scenario", "network", "nodes"),
    [
        (AP, "ring0", ["node1", "node2", "client"]),
        (AP, "ring1", ["node1", "node2"]),
        (AA, "mgmt", ["controller1", "controller2", "controller3", "haproxy1", "haproxy2", "client"]),
    ],
)
def test_packet_loss_on_all_is_one_rule_over_every_port_of_the_network(
    scenario: Scenario, network: str, nodes: list[str]
) -> None:
    env = FakeEnv(scenario)
    r = aimed(make("packet_loss", "all", network=network, percent="100"), env)
    assert r.target == "all" and r.chosen_by is None
    assert env.lives == 0  # nothing live to look at for a whole network
    r.apply(env)
    ports = q(*(f"{n}-{network}" for n in nodes))
    assert env.calls == [("filter_add", r.table, [f"iifname {ports} numgen random mod 100 < 100 drop"])]  # type: ignore[attr-defined]
    assert r.describe() == f"packet_loss all network={network} percent=100 direction=both"
    r.heal(env)
    assert env.provider.tables == {}


def test_packet_loss_on_a_selector_resolves_it() -> None:
    env = FakeEnv(AP, vips={"rabbitmq": ["node2"]})
    r = aimed(make("packet_loss", "vip:rabbitmq", network="ring0", percent="50", direction="in"), env)
    assert isinstance(r, PacketLoss)
    assert (r.target, r.chosen_by) == ("node2", "vip:rabbitmq")
    r.apply(env)
    assert env.provider.tables == {r.table: [f"oifname {q('node2-ring0')} numgen random mod 100 < 50 drop"]}


def test_packet_loss_tables_differ_by_percent_network_and_target() -> None:
    tables = {
        make("packet_loss", t, network=n, percent=p).table  # type: ignore[attr-defined]
        for t in ("node1", "node2", "all")
        for n in ("ring0", "ring1")
        for p in ("10", "20")
    }
    assert len(tables) == 12
    assert all(t.startswith("pack_") for t in tables)


def test_partition_side_puts_more_nodes_on_the_targets_side() -> None:
    """A 2:1 split of AP's ring0: node1 and the client on one side, node2 on the other (a 4:3 split the same)."""
    env = FakeEnv(AP)
    r = aimed(make("partition", "node1", network="ring0", side="client"), env)
    assert isinstance(r, Partition) and (r.side, r.others) == (("client",), ("node2",))
    assert r.params() == {"network": "ring0", "others": ["node2"], "one_way": False, "side": ["client"]}
    r.apply(env)
    assert env.provider.tables[r.table] == [
        f"iifname {q('node1-ring0', 'client-ring0')} oifname {q('node2-ring0')} drop",
        f"iifname {q('node2-ring0')} oifname {q('node1-ring0', 'client-ring0')} drop",
    ]
    # without a side it records what it always recorded (schedules and histories from before read the same)
    assert "side" not in aimed(make("partition", "node1", network="ring0"), FakeEnv(AP)).params()


def test_partition_side_refuses_a_node_on_both_sides_or_off_the_network() -> None:
    with pytest.raises(FaultError, match="^partition: node2 is on both sides$"):
        aimed(make("partition", "node1", network="ring0", side="node2", others="node2,client"), FakeEnv(AP))
    with pytest.raises(FaultError, match="^partition: side: client not on ring1$"):
        aimed(make("partition", "node1", network="ring1", side="client"), FakeEnv(AP))
