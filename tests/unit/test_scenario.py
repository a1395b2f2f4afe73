"""lab/scenario.py: the scenario format, and one clear error per mistake."""

from __future__ import annotations

import dataclasses
import pickle
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from lab import scenario as sc
from lab.scenario import ScenarioError, load_scenario, parse_scenario, scenario_path
from tests.unit.scenario_edits import DELETE, edited

pytestmark = pytest.mark.unit

PATH = Path("scenarios/test.yaml")

VALID: dict[str, Any] = {
    "topology": "active-passive",
    "chapters": [2, 3],
    "description": "two pacemaker nodes and a client",
    "networks": {
        "ring0": {"cidr": "192.168.42.0/24", "purpose": "management", "gateway": "192.168.42.254"},
        "ring1": {"cidr": "10.0.42.0/24", "purpose": "replication"},
    },
    "nodes": {
        "node1": {"roles": ["pacemaker", "mysql"], "addresses": {"ring0": "192.168.42.1", "ring1": "10.0.42.1"}},
        "node2": {"roles": ["pacemaker", "mysql"], "addresses": {"ring0": "192.168.42.2", "ring1": "10.0.42.2"}},
        "client": {"roles": ["client"], "addresses": {"ring0": "192.168.42.10"}, "memory_mb": 512},
    },
    "vips": {
        "mysql": {"address": "192.168.42.101", "network": "ring0", "resource": "p_ip_mysql"},
        "rabbitmq": {"address": "192.168.42.100", "network": "ring0", "resource": "p_ip_rabbitmq"},
    },
    "services": {
        "mysql": {"group": "g_mysql", "vip": "mysql", "port": 3306, "drbd_minor": 0, "drbd_port": 7700},
        "rabbitmq": {"group": "g_rabbitmq", "vip": "rabbitmq", "port": 5672, "drbd_minor": 1, "drbd_port": 7701},
    },
    "cluster": {"token_ms": 1000, "two_node": True, "no_quorum_policy": "ignore", "stonith": False},
    "profile": "guide",
    "profiles": {
        "guide": {"description": "as the guide writes it"},
        "hardened": {"description": "authkey and ping", "secauth": True, "ping_check": True},
    },
}


def changed(*edits: tuple[str, Any]) -> dict[str, Any]:
    """A deep copy of VALID with each (dotted.path, value) set, or deleted for DELETE."""
    return edited(VALID, *edits)


def error(data: Any) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, PATH)
    return info.value


# --- a valid scenario ----------------------------------------------------------------------------


def test_valid_scenario_parses_to_typed_frozen_objects() -> None:
    s = parse_scenario(VALID, PATH)
    assert s.name == "test" and s.path == PATH and s.chapters == (2, 3)
    assert s.networks["ring0"].cidr == IPv4Network("192.168.42.0/24")
    assert s.networks["ring0"].gateway == IPv4Address("192.168.42.254")
    assert s.networks["ring1"].gateway is None
    assert s.nodes["node2"].addresses["ring1"] == IPv4Address("10.0.42.2")
    assert (s.nodes["node1"].memory_mb, s.nodes["client"].memory_mb, s.nodes["client"].cpus) == (768, 512, 1)
    assert [n.name for n in s.nodes_with_role("pacemaker")] == ["node1", "node2"]
    assert s.nodes["client"].has_role("client") and not s.nodes["client"].has_role("mysql")
    assert s.vip_for("rabbitmq").address == IPv4Address("192.168.42.100")
    assert s.services["mysql"].disk_mb == 256 and s.services["mysql"].drbd_port == 7700
    assert s.cluster.consensus_ms == 1200  # corosync's default: 1.2 * token
    assert s.cluster.token_retransmits_before_loss_const == 4
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.nodes["node1"].cpus = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.nodes["node1"].addresses["ring0"] = IPv4Address("192.168.42.3")  # type: ignore[index]
    hash(s)


def test_options_apply_profile_overrides() -> None:
    s = parse_scenario(VALID, PATH)
    assert s.default_profile == "guide"
    assert s.options() == s.cluster == s.options("guide")
    hardened = s.options("hardened")
    assert hardened.secauth and hardened.ping_check and hardened.token_ms == 1000


def test_options_unknown_profile_lists_known_ones() -> None:
    e = pytest.raises(ScenarioError, parse_scenario(VALID, PATH).options, "harden").value
    assert e.field == "profile" and "'harden'" in e.problem and "guide, hardened" in e.fix


def test_profile_token_override_moves_default_consensus() -> None:
    s = parse_scenario(changed(("profiles.hardened.token_ms", 10000)), PATH)
    assert (s.options("hardened").token_ms, s.options("hardened").consensus_ms) == (10000, 12000)
    assert s.options("guide").consensus_ms == 1200


def test_without_profiles_a_default_profile_is_the_cluster_as_written() -> None:
    s = parse_scenario(changed(("profiles", DELETE), ("profile", DELETE)), PATH)
    assert s.default_profile == "default" and s.options() == s.cluster


def test_vips_and_services_are_optional() -> None:
    s = parse_scenario(changed(("services", DELETE), ("vips", DELETE)), PATH)
    assert dict(s.vips) == {} and dict(s.services) == {}


def test_error_message_names_file_field_problem_and_fix() -> None:
    e = error(changed(("nodes.node2.addresses.ring0", "192.168.43.2")))
    assert (e.path, e.field) == (str(PATH), "nodes.node2.addresses.ring0")
    assert str(e) == f"{PATH}: nodes.node2.addresses.ring0: {e.problem}. Fix: {e.fix}"
    assert "192.168.42.1 to 192.168.42.254" in e.fix
    assert isinstance(e, ValueError)
    assert str(pickle.loads(pickle.dumps(e))) == str(e)


# --- one error per mistake -----------------------------------------------------------------------

CASES = [
    # missing required fields
    ("missing-topology", [("topology", DELETE)], "topology", "missing required field"),
    ("unknown-topology", [("topology", "active-standby")], "topology", "unknown topology"),
    ("name-key", [("name", "test")], "name", "no longer names its lab"),
    ("ap-service-without-group", [("services.mysql.group", DELETE)], "services.mysql.group", "Pacemaker group"),
    ("ap-no-client", [("nodes.client", DELETE)], "nodes", "client role"),
    ("aa-without-galera", [("topology", "active-active")], "nodes", "galera role"),
    ("missing-networks", [("networks", DELETE)], "networks", "missing required field"),
    ("missing-nodes", [("nodes", DELETE)], "nodes", "missing required field"),
    ("missing-token", [("cluster.token_ms", DELETE)], "cluster.token_ms", "missing required field"),
    ("missing-cidr", [("networks.ring1.cidr", DELETE)], "networks.ring1.cidr", "missing required field"),
    ("missing-roles", [("nodes.client.roles", DELETE)], "nodes.client.roles", "missing required field"),
    ("missing-resource", [("vips.mysql.resource", DELETE)], "vips.mysql.resource", "missing required field"),
    ("missing-profile", [("profile", DELETE)], "profile", "missing required field"),
    ("no-nodes", [("nodes", {})], "nodes", "no entries"),
    ("no-addresses", [("nodes.client.addresses", {})], "nodes.client.addresses", "no entries"),
    # wrong shapes and names
    ("node-not-mapping", [("nodes.node1", "pacemaker")], "nodes.node1", "expected a mapping"),
    ("roles-not-list", [("nodes.node1.roles", "pacemaker")], "nodes.node1.roles", "non-empty list"),
    (
        "long-network-name",
        [("networks.replication-2", {"cidr": "10.1.0.0/24", "purpose": "x"})],
        "networks.replication-2",
        "longer than 12 characters",
    ),
    # typos
    ("unknown-top-key", [("node", {})], "node", "unknown key 'node' (did you mean 'nodes'?)"),
    ("unknown-node-key", [("nodes.node1.memory", 512)], "nodes.node1.memory", "did you mean 'memory_mb'?"),
    ("unknown-vip-key", [("vips.mysql.port", 1)], "vips.mysql.port", "unknown key 'port'"),
    ("unknown-cluster-key", [("cluster.tokens_ms", 1)], "cluster.tokens_ms", "did you mean 'token_ms'?"),
    (
        "unknown-profile-key",
        [("profiles.hardened.pingcheck", True)],
        "profiles.hardened.pingcheck",
        "did you mean 'ping_check'?",
    ),
    # networks
    ("bad-cidr", [("networks.ring0.cidr", "192.168.42.0/33")], "networks.ring0.cidr", "not an IPv4 CIDR"),
    ("cidr-no-prefix", [("networks.ring0.cidr", "192.168.42.0")], "networks.ring0.cidr", "not a CIDR"),
    ("cidr-host-bits", [("networks.ring0.cidr", "192.168.42.1/24")], "networks.ring0.cidr", "host bits set"),
    (
        "overlapping-networks",
        [("networks.ring1.cidr", "192.168.0.0/16")],
        "networks.ring1.cidr",
        "overlaps network ring0 (192.168.42.0/24)",
    ),
    (
        "gateway-outside",
        [("networks.ring0.gateway", "192.168.43.254")],
        "networks.ring0.gateway",
        "outside network ring0",
    ),
    (
        "gateway-is-node",
        [("networks.ring0.gateway", "192.168.42.1")],
        "nodes.node1.addresses.ring0",
        "192.168.42.1 is already used by networks.ring0.gateway",
    ),
    # node addresses and roles
    (
        "duplicate-node-address",
        [("nodes.node2.addresses.ring0", "192.168.42.1")],
        "nodes.node2.addresses.ring0",
        "already used by nodes.node1.addresses.ring0",
    ),
    (
        "address-outside-cidr",
        [("nodes.node2.addresses.ring1", "10.0.43.2")],
        "nodes.node2.addresses.ring1",
        "10.0.43.2 is outside network ring1 (10.0.42.0/24)",
    ),
    (
        "address-unknown-network",
        [("nodes.node2.addresses.storage", "10.9.0.2")],
        "nodes.node2.addresses.storage",
        "unknown network 'storage'",
    ),
    (
        "address-is-network",
        [("nodes.node2.addresses.ring0", "192.168.42.0")],
        "nodes.node2.addresses.ring0",
        "the network address of ring0",
    ),
    (
        "address-is-broadcast",
        [("nodes.node2.addresses.ring0", "192.168.42.255")],
        "nodes.node2.addresses.ring0",
        "the broadcast address of ring0",
    ),
    (
        "address-not-ip",
        [("nodes.node2.addresses.ring0", "192.168.42.300")],
        "nodes.node2.addresses.ring0",
        "not an IPv4 address",
    ),
    ("unknown-role", [("nodes.node1.roles", ["pacemaker", "mysqld"])], "nodes.node1.roles", "unknown role 'mysqld'"),
    ("duplicate-role", [("nodes.node1.roles", ["mysql", "mysql"])], "nodes.node1.roles", "listed twice"),
    ("memory-not-int", [("nodes.node1.memory_mb", "768M")], "nodes.node1.memory_mb", "expected a whole number"),
    # VIPs
    ("vip-outside-subnet", [("vips.mysql.address", "10.0.42.101")], "vips.mysql.address", "outside network ring0"),
    (
        "vip-is-node",
        [("vips.mysql.address", "192.168.42.2")],
        "vips.mysql.address",
        "already used by nodes.node2.addresses.ring0",
    ),
    (
        "vip-is-gateway",
        [("vips.mysql.address", "192.168.42.254")],
        "vips.mysql.address",
        "already used by networks.ring0.gateway",
    ),
    (
        "duplicate-vip",
        [("vips.rabbitmq.address", "192.168.42.101")],
        "vips.rabbitmq.address",
        "already used by vips.mysql.address",
    ),
    ("vip-unknown-network", [("vips.mysql.network", "ring2")], "vips.mysql.network", "unknown network 'ring2'"),
    # services and Pacemaker resources
    ("service-unknown-vip", [("services.mysql.vip", "galera")], "services.mysql.vip", "unknown vip 'galera'"),
    (
        "duplicate-group",
        [("services.rabbitmq.group", "g_mysql")],
        "services.rabbitmq.group",
        "g_mysql is already used by services.mysql.group",
    ),
    (
        "group-is-vip-resource",
        [("services.mysql.group", "p_ip_mysql")],
        "services.mysql.group",
        "already used by vips.mysql.resource",
    ),
    ("bad-resource-id", [("vips.mysql.resource", "ip mysql")], "vips.mysql.resource", "not a valid Pacemaker"),
    ("bad-port", [("services.mysql.port", 70000)], "services.mysql.port", "between 1 and 65535"),
    (
        "duplicate-drbd-minor",
        [("services.rabbitmq.drbd_minor", 0)],
        "services.rabbitmq.drbd_minor",
        "already used by services.mysql.drbd_minor",
    ),
    ("drbd-minor-without-port", [("services.mysql.drbd_port", DELETE)], "services.mysql", "must be set together"),
    # cluster options
    ("token-not-int", [("cluster.token_ms", "1000ms")], "cluster.token_ms", "expected a whole number >= 1"),
    ("token-zero", [("cluster.token_ms", 0)], "cluster.token_ms", "expected a whole number >= 1"),
    ("token-bool", [("cluster.token_ms", True)], "cluster.token_ms", "expected a whole number"),
    ("two-node-string", [("cluster.two_node", "yes")], "cluster.two_node", "expected true or false"),
    (
        "bad-no-quorum-policy",
        [("cluster.no_quorum_policy", "ignored")],
        "cluster.no_quorum_policy",
        "not a no-quorum-policy",
    ),
    ("consensus-too-low", [("cluster.consensus_ms", 1000)], "cluster.consensus_ms", "below 1.2 * token_ms"),
    (
        "two-node-three-voters",
        [("nodes.client.roles", ["pacemaker"])],
        "cluster.two_node",
        "3 nodes have the pacemaker role",
    ),
    # profiles
    ("unknown-default-profile", [("profile", "guid")], "profile", "unknown profile 'guid'"),
    (
        "bad-profile-value",
        [("profiles.hardened.ping_check", "yes")],
        "profiles.hardened.ping_check",
        "expected true or false",
    ),
    (
        "profile-consensus-too-low",
        [("cluster.consensus_ms", 1200), ("profiles.hardened.token_ms", 10000)],
        "profiles.hardened.consensus_ms",
        "below 1.2 * token_ms = 12000",
    ),
    (
        "profile-no-description",
        [("profiles.guide.description", DELETE)],
        "profiles.guide.description",
        "missing required field",
    ),
]


@pytest.mark.parametrize(("edits", "field", "problem"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_mistake_is_one_clear_error(edits: list[tuple[str, Any]], field: str, problem: str) -> None:
    e = error(changed(*edits))
    assert e.field == field, str(e)
    assert problem in e.problem, str(e)
    assert e.fix, str(e)


def test_unknown_key_fix_lists_allowed_keys() -> None:
    e = error(changed(("nodes.node1.memory", 512)))
    assert e.fix == "use only the allowed keys: roles, addresses, memory_mb, cpus, cluster"


def test_invalid_node_name() -> None:
    data = changed()
    data["nodes"]["Node_1"] = data["nodes"].pop("node1")
    assert error(data).field == "nodes.Node_1"


def test_not_a_mapping() -> None:
    for data in (None, [], "name: x"):
        e = error(data)
        assert e.field == "(file)" and "expected a mapping" in e.problem


# --- files ---------------------------------------------------------------------------------------

DUPLICATE_NODE = """\
topology: active-passive
networks:
  ring0: {cidr: 192.168.42.0/24, purpose: management}
nodes:
  node1: {roles: [client], addresses: {ring0: 192.168.42.1}}
  node1: {roles: [client], addresses: {ring0: 192.168.42.2}}
  node2: {roles: [pacemaker], addresses: {ring0: 192.168.42.3}}
  node3: {roles: [pacemaker], addresses: {ring0: 192.168.42.4}}
cluster: {token_ms: 1000, two_node: true, no_quorum_policy: stop, stonith: false}
"""


def test_load_missing_file(tmp_path: Path) -> None:
    e = pytest.raises(ScenarioError, load_scenario, tmp_path / "nope.yaml").value
    assert e.field == "(file)" and "no such scenario file" in e.problem and "active-passive" in e.fix


def test_load_not_yaml(tmp_path: Path) -> None:
    f = tmp_path / "broken.yaml"
    f.write_text("name: x\nnodes: [unclosed\n")
    e = pytest.raises(ScenarioError, load_scenario, f).value
    assert e.path == str(f) and e.field.startswith("line ") and "not valid YAML" in e.problem


@pytest.mark.parametrize("text", ["", "- a list\n", "just text\n"])
def test_load_not_a_mapping(tmp_path: Path, text: str) -> None:
    f = tmp_path / "flat.yaml"
    f.write_text(text)
    e = pytest.raises(ScenarioError, load_scenario, f).value
    assert e.field == "(file)" and "expected a mapping" in e.problem


def test_load_rejects_duplicate_keys(tmp_path: Path) -> None:
    f = tmp_path / "dup.yaml"
    f.write_text(DUPLICATE_NODE)
    e = pytest.raises(ScenarioError, load_scenario, f).value
    assert e.field == "nodes.node1" and "duplicate key 'node1' on line 6 (first on line 5)" in e.problem
    f.write_text(DUPLICATE_NODE.replace("  node1: {roles: [client], addresses: {ring0: 192.168.42.2}}\n", ""))
    assert list(load_scenario(f).nodes) == ["node1", "node2", "node3"]  # without the duplicate it loads


def test_scenario_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "alpha.yaml").write_text("")
    (tmp_path / "beta.yaml").write_text("")
    monkeypatch.setattr(sc, "SCENARIO_DIR", tmp_path)
    assert scenario_path("alpha") == tmp_path / "alpha.yaml"
    assert scenario_path("beta.yaml") == tmp_path / "beta.yaml"
    existing = tmp_path / "alpha.yaml"
    assert scenario_path(existing) == existing
    e = pytest.raises(ScenarioError, scenario_path, "gamma").value
    assert e.path == "gamma" and "(alpha, beta)" in e.fix


def test_real_active_passive_scenario() -> None:
    s = load_scenario("active-passive")
    assert s.path == sc.SCENARIO_DIR / "active-passive.yaml"
    assert {"node1", "node2", "client"} <= set(s.nodes)
    assert {str(v.address) for v in s.vips.values()} >= {"192.168.42.101", "192.168.42.100"}
    assert s.options("hardened").ping_check is True
    assert s.options("guide").stonith is False


def test_ping_check_without_a_gateway_is_rejected(tmp_path) -> None:
    import yaml

    data = yaml.safe_load((sc.SCENARIO_DIR / "active-passive.yaml").read_text())
    del data["networks"]["ring0"]["gateway"]
    with pytest.raises(ScenarioError) as e:
        parse_scenario(data, tmp_path / "x.yaml")
    assert e.value.field == "profiles.hardened.ping_check" and "gateway" in str(e.value)
