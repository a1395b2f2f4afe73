"""Scenario files (scenarios/*.yaml) as frozen dataclasses.

Every mistake in a file is reported as one ScenarioError naming the file, the field as a dotted
path (``nodes.node2.addresses.ring0``), what is wrong, and how to fix it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from lab.scenario_fields import (
    _NAME as _NAME_RE,
)
from lab.scenario_fields import (
    FieldError,
    _bool,
    _cidr,
    _claim,
    _fail,
    _host_on,
    _int,
    _Invalid,
    _ip,
    _items,
    _policy,
    _port,
    _ref,
    _resource,
    _section,
    _show,
    _str,
    _StrictLoader,
)
from lab.scenario_quorum import QNETD_ROLE, QUORUM_FIELDS, QDevice, check_quorum

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
# What a scenario builds; provision/playbook.py maps each to its playbook (lab/ imports nothing from provision/).
TOPOLOGIES = {
    "active-passive": "guide ch. 2-3: Pacemaker running the guide's MySQL and RabbitMQ groups on a shared disk",
    "active-active": "guide ch. 6-9: Galera, a RabbitMQ cluster and APIs behind HAProxy + keepalived",
    "quorum": "guide ch. 2 votequorum: a full-size cluster (or two nodes and a qdevice) with a group and a "
    "promotable resource",
}
KNOWN_ROLES = frozenset(
    {"pacemaker", "mysql", "rabbitmq", "client", "galera", "haproxy", "keepalived", "memcached", "api", QNETD_ROLE}
)


class ScenarioError(FieldError):
    """One mistake in a scenario: the file, the field, the problem and the fix."""


@dataclass(frozen=True)
class Network:
    name: str
    cidr: IPv4Network
    purpose: str
    gateway: IPv4Address | None = None


@dataclass(frozen=True)
class Node:
    name: str
    roles: tuple[str, ...]
    addresses: Mapping[str, IPv4Address] = dataclasses.field(hash=False)  # network name -> address
    memory_mb: int = 768
    cpus: int = 1

    def has_role(self, role: str) -> bool:
        return role in self.roles


@dataclass(frozen=True)
class Vip:
    name: str
    address: IPv4Address
    network: str
    resource: str  # the Pacemaker IPaddr2 resource holding it


@dataclass(frozen=True)
class Service:
    name: str
    group: str | None  # the Pacemaker group running it (active/passive); None behind HAProxy (active/active)
    vip: str
    port: int
    disk_mb: int = 256
    drbd_minor: int | None = None
    drbd_port: int | None = None


@dataclass(frozen=True)
class ClusterOptions:
    token_ms: int
    consensus_ms: int  # the parser defaults it to int(1.2 * token_ms), as corosync does
    two_node: bool
    no_quorum_policy: str
    stonith: bool
    secauth: bool = False
    ping_check: bool = False
    token_retransmits_before_loss_const: int = 4
    # corosync's nodelist (the pacemaker nodes): from 3 on, its token timeout grows by token_coefficient per node
    nodelist_size: int = 2
    # votequorum (guide ch. 2, votequorum(5)); lab/scenario_quorum.py parses and checks them. None: corosync's
    # own default, and nothing written to corosync.conf (the shipped scenarios' files stay as they were).
    expected_votes: int | None = None  # None: counted from the nodelist
    wait_for_all: bool | None = None  # None: on exactly when two_node is
    last_man_standing: bool = False
    last_man_standing_window_ms: int | None = None  # None: corosync's 10000
    auto_tie_breaker: str | tuple[str, ...] | None = None  # lowest | highest | node names in order; None: off
    qdevice: QDevice | None = None
    # active/active (guide ch. 6-9): keepalived, HAProxy checks, Galera, RabbitMQ
    vrrp_advert_int_s: int = 1
    vrrp_nopreempt: bool = False
    vrrp_unicast: bool = False
    chk_haproxy_interval_s: int = 1
    chk_haproxy_fall: int = 2
    haproxy_inter_ms: int = 2000  # the guide's `check inter 2000 rise 2 fall 5`
    haproxy_rise: int = 2
    haproxy_fall: int = 5
    galera_suspect_timeout_ms: int = 5000  # evs.suspect_timeout, galera's default PT5S
    quorum_queues: bool = False


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    overrides: Mapping[str, Any] = dataclasses.field(hash=False)  # ClusterOptions field -> value


@dataclass(frozen=True)
class Scenario:
    name: str  # the lab's name: the file's stem unless `--lab` gives another (namespaces, domains, reports)
    path: Path
    topology: str
    chapters: tuple[int, ...]
    description: str
    networks: Mapping[str, Network] = dataclasses.field(hash=False)
    nodes: Mapping[str, Node] = dataclasses.field(hash=False)
    vips: Mapping[str, Vip] = dataclasses.field(hash=False)
    services: Mapping[str, Service] = dataclasses.field(hash=False)
    cluster: ClusterOptions
    profiles: Mapping[str, Profile] = dataclasses.field(hash=False)
    default_profile: str

    def options(self, profile: str | None = None) -> ClusterOptions:
        """The cluster options with `profile`'s overrides (the default profile if None)."""
        name = self.default_profile if profile is None else profile
        if name not in self.profiles:
            raise ScenarioError(
                self.path, "profile", f"unknown profile {name!r}", f"use one of: {', '.join(self.profiles)}"
            )
        return dataclasses.replace(self.cluster, **self.profiles[name].overrides)

    def nodes_with_role(self, role: str) -> list[Node]:
        if role not in KNOWN_ROLES:
            raise ValueError(f"unknown role {role!r}; known roles: {', '.join(sorted(KNOWN_ROLES))}")
        return [n for n in self.nodes.values() if n.has_role(role)]

    def network_for(self, purpose: str) -> str:
        """The name of the first network with `purpose` (management, replication): tests name networks by role."""
        for net in self.networks.values():
            if net.purpose == purpose:
                return net.name
        raise ScenarioError(
            self.path, "networks", f"no network with purpose {purpose!r}", f"give one network `purpose: {purpose}`"
        )

    def vip_for(self, service: str) -> Vip:
        if service not in self.services:
            raise ScenarioError(
                self.path, "services", f"no service {service!r}", f"use one of: {', '.join(self.services)}"
            )
        return self.vips[self.services[service].vip]


# --- loading -------------------------------------------------------------------------------------


def scenario_path(name_or_path: str | Path) -> Path:
    """An existing file as is, else ``SCENARIO_DIR/<name>.yaml``."""
    given = Path(name_or_path)
    if given.is_file():
        return given
    if len(given.parts) == 1:
        candidate = SCENARIO_DIR / (given.name if given.suffix == ".yaml" else f"{given.name}.yaml")
        if candidate.is_file():
            return candidate
    available = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))) or "(none)"
    raise ScenarioError(
        name_or_path,
        "(file)",
        "no such scenario file",
        f"use a scenario name from {SCENARIO_DIR} ({available}) or the path of an existing .yaml file",
    )


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Read, parse and validate a scenario by name or path."""
    path = scenario_path(name_or_path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except _Invalid as e:
        raise ScenarioError(path, e.field, e.problem, e.fix) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError(path, "(file)", f"cannot read it ({e})", "make it a readable UTF-8 text file") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        problem = getattr(e, "problem", None) or str(e)
        raise ScenarioError(
            path, where, f"not valid YAML ({problem})", "check the indentation, colons and brackets there"
        ) from None
    return parse_scenario(data, path)


def parse_scenario(data: Any, path: Path) -> Scenario:
    """Validate already-loaded YAML data and build the Scenario."""
    try:
        return _parse(data, Path(path))
    except _Invalid as e:
        raise ScenarioError(path, e.field, e.problem, e.fix) from None


def lab_name(value: str, where: str = "--lab") -> str:
    """A lab name becomes namespace, domain and host-name prefixes: a hostname label of at most 20 characters."""
    if not _NAME_RE.match(value) or len(value) > 20:
        _fail(
            where,
            f"{value!r} cannot name a lab",
            "use at most 20 lowercase letters, digits and inner '-' (rename the file, or pass --lab NAME)",
        )
    return value


def renamed(scenario: Scenario, lab: str | None) -> Scenario:
    """The same scenario run as another lab (`--lab NAME`): two copies side by side in their own namespaces."""
    if not lab or lab == scenario.name:
        return scenario
    try:
        return dataclasses.replace(scenario, name=lab_name(lab))
    except _Invalid as e:
        raise ScenarioError(scenario.path, e.field, e.problem, e.fix) from None


# --- the scenario --------------------------------------------------------------------------------

_CLUSTER_FIELDS: dict[str, Callable[[Any, str], Any]] = {
    "token_ms": _int,
    "consensus_ms": _int,
    "two_node": _bool,
    "no_quorum_policy": _policy,
    "stonith": _bool,
    "secauth": _bool,
    "ping_check": _bool,
    "token_retransmits_before_loss_const": _int,
    **QUORUM_FIELDS,
    "vrrp_advert_int_s": _int,
    "vrrp_nopreempt": _bool,
    "vrrp_unicast": _bool,
    "chk_haproxy_interval_s": _int,
    "chk_haproxy_fall": _int,
    "haproxy_inter_ms": _int,
    "haproxy_rise": _int,
    "haproxy_fall": _int,
    "galera_suspect_timeout_ms": _int,
    "quorum_queues": _bool,
}
_CLUSTER_REQUIRED = ("token_ms", "two_node", "no_quorum_policy", "stonith")
_ADDRESS_FIX = "give every node address, VIP and gateway its own IP"
_RESOURCE_FIX = "give every Pacemaker resource (VIP resource, service group) its own id"


def _check_cluster(opts: ClusterOptions, where: str, nodes: dict[str, Node], given: Collection[str]) -> None:
    """Rules that span fields: corosync's consensus minimum, two_node's two votes, and the quorum options' rules
    (`given`: the keys the section writes itself)."""
    pacemaker_nodes = [n.name for n in nodes.values() if n.has_role("pacemaker")]
    minimum = int(1.2 * opts.token_ms)
    if opts.consensus_ms < minimum:
        _fail(
            f"{where}.consensus_ms",
            f"{opts.consensus_ms} is below 1.2 * token_ms = {minimum}, which corosync refuses",
            f"set consensus_ms >= {minimum}, or drop it to default to 1.2 * token_ms",
        )
    if opts.two_node and len(pacemaker_nodes) != 2:
        _fail(
            f"{where}.two_node",
            f"two_node is true but {len(pacemaker_nodes)} nodes have the pacemaker role "
            f"({', '.join(pacemaker_nodes) or 'none'})",
            "set two_node: false, or give exactly two nodes that role",
        )
    check_quorum(opts, where, nodes, given)


def _parse(data: Any, path: Path) -> Scenario:
    top = _section(
        data,
        "",
        ("topology", "networks", "nodes", "cluster"),
        ("name", "chapters", "description", "vips", "services", "profile", "profiles"),
    )
    if "name" in top:
        _fail(
            "name",
            "a scenario no longer names its lab",
            "delete the `name:` line: the lab is named after the file (mylab.yaml -> mylab), or `--lab NAME`",
        )
    topology = top["topology"]
    if topology not in TOPOLOGIES:
        _fail(
            "topology",
            f"unknown topology {_show(topology)}",
            "use one of: " + "; ".join(f"{k} ({v})" for k, v in TOPOLOGIES.items()),
        )
    name = lab_name(path.stem, "(file name)")
    chapters = top.get("chapters") or []
    if not isinstance(chapters, list):
        _fail("chapters", f"expected a list, got {_show(chapters)}", "write the guide's chapters as e.g. [2, 3]")
    taken: dict[IPv4Address, str] = {}  # every address in use -> the field using it
    resources: dict[str, str] = {}  # every Pacemaker resource id -> the field defining it
    networks = _networks(top["networks"], taken)
    nodes = _nodes(top["nodes"], networks, taken)
    vips = _vips(top.get("vips"), networks, taken, resources)
    services = _services(top.get("services"), vips, resources)
    cluster = _cluster(top["cluster"], nodes)
    profiles = _profiles(top.get("profiles"), top["cluster"], cluster, nodes)

    if not any(n.gateway for n in networks.values()):
        for where, opts in [("cluster", cluster)] + [
            (f"profiles.{p.name}", dataclasses.replace(cluster, **p.overrides)) for p in profiles.values()
        ]:
            if opts.ping_check:
                _fail(
                    f"{where}.ping_check",
                    "ping_check is true but no network has a gateway to ping",
                    "give the management network a `gateway:` (the lab fabric holds it), or set ping_check: false",
                )
    if "profile" not in top and profiles:
        _fail("profile", "missing required field", f"add `profile:` naming one of: {', '.join(profiles)}")
    if not profiles:
        profiles["default"] = Profile("default", "the cluster options as written", MappingProxyType({}))
    default_profile = _ref(top.get("profile", "default"), profiles, "profile", "profile")
    _check_topology(topology, networks, nodes, services)
    scenario = Scenario(
        name=name,
        path=path,
        topology=topology,
        chapters=tuple(_int(c, f"chapters.{i}") for i, c in enumerate(chapters)),
        description=_str(top["description"], "description") if "description" in top else "",
        networks=MappingProxyType(networks),
        nodes=MappingProxyType(nodes),
        vips=MappingProxyType(vips),
        services=MappingProxyType(services),
        cluster=cluster,
        profiles=MappingProxyType(profiles),
        default_profile=default_profile,
    )
    # on the options each section runs with, as Scenario.options gives them (the cluster's own: no profile's)
    _check_qdevice(topology, "cluster", cluster)
    for p in profiles:
        _check_qdevice(topology, f"profiles.{p}", scenario.options(p))
    return scenario


def _check_topology(
    topology: str, networks: dict[str, Network], nodes: dict[str, Node], services: dict[str, Service]
) -> None:
    """What the topology's playbook needs from a scenario, refused here rather than half-way through provisioning."""

    def count(role: str) -> int:
        return sum(1 for n in nodes.values() if n.has_role(role))

    if not any(n.purpose == "management" for n in networks.values()):
        _fail("networks", f"{topology} needs a network with purpose management", "set `purpose: management` on one")
    if not count("client"):
        _fail("nodes", f"{topology} needs a node with the client role (it runs the workloads)", "add one")
    if topology in ("active-passive", "quorum"):
        if count("pacemaker") < 2:
            _fail("nodes", f"{topology} needs two or more nodes with the pacemaker role", "give two nodes that role")
        for name, svc in services.items():
            if svc.group is None:
                _fail(f"services.{name}.group", f"{topology} runs every service in a Pacemaker group",
                      f"add `group: g_{name}`")  # fmt: skip
    if topology == "quorum" and len(services) != 1:
        _fail("services", f"quorum runs one service (a VIP + memcached group), not {len(services)}",
              "keep one, e.g. memcached: {group: g_cache, vip: cache, port: 11211}")  # fmt: skip
    if topology == "active-active":
        for role in ("galera", "haproxy", "keepalived"):
            if not count(role):
                _fail("nodes", f"active-active needs a node with the {role} role", f"give a node the {role} role")


def _check_qdevice(topology: str, where: str, opts: ClusterOptions) -> None:
    """What the lab's playbooks can run of a qdevice (corosync would take more)."""
    if opts.qdevice is None:
        return
    if topology != "quorum":
        _fail(f"{where}.qdevice", f"the {topology} playbook starts no corosync-qnetd or corosync-qdevice",
              "use topology: quorum for a cluster with a quorum device")  # fmt: skip
    if opts.qdevice.tls == "required":
        _fail(f"{where}.qdevice.tls", "the lab runs qnetd without TLS (no NSS certificate databases on the nodes)",
              "write tls: off (or on: TLS only where qnetd offers it)")  # fmt: skip


def _networks(data: Any, taken: dict[IPv4Address, str]) -> dict[str, Network]:
    networks: dict[str, Network] = {}
    for name, raw in _items(data, "networks", required=True):
        where = f"networks.{name}"
        if len(name) > 12:
            _fail(
                where,
                f"{name!r} is longer than 12 characters",
                "shorten it: it becomes interface name br-<name>",
            )
        _section(raw, where, ("cidr", "purpose"), ("gateway",))
        net = Network(name, _cidr(raw["cidr"], f"{where}.cidr"), _str(raw["purpose"], f"{where}.purpose"))
        for other in networks.values():
            if net.cidr.overlaps(other.cidr):
                _fail(
                    f"{where}.cidr",
                    f"{net.cidr} overlaps network {other.name} ({other.cidr})",
                    "give each network its own, non-overlapping subnet",
                )
        if raw.get("gateway") is not None:
            gateway = _ip(raw["gateway"], f"{where}.gateway")
            net = dataclasses.replace(net, gateway=gateway)
            _host_on(gateway, net, f"{where}.gateway")
            _claim(taken, gateway, f"{where}.gateway", _ADDRESS_FIX)
        networks[name] = net
    return networks


def _nodes(data: Any, networks: dict[str, Network], taken: dict[IPv4Address, str]) -> dict[str, Node]:
    nodes: dict[str, Node] = {}
    for name, raw in _items(data, "nodes", required=True):
        where = f"nodes.{name}"
        _section(raw, where, ("roles", "addresses"), ("memory_mb", "cpus"))
        roles = raw["roles"]
        if not isinstance(roles, list) or not roles:
            _fail(
                f"{where}.roles",
                f"expected a non-empty list, got {_show(roles)}",
                "write e.g. [pacemaker, mysql]",
            )
        for i, role in enumerate(roles):
            known = isinstance(role, str) and role in KNOWN_ROLES
            if not known or roles.index(role) != i:
                problem = f"role {role!r} is listed twice" if known else f"unknown role {role!r}"
                _fail(f"{where}.roles", problem, f"list each role once, from: {', '.join(sorted(KNOWN_ROLES))}")
        addresses: dict[str, IPv4Address] = {}
        for net_name, value in _items(raw["addresses"], f"{where}.addresses", required=True):
            field = f"{where}.addresses.{net_name}"
            _ref(net_name, networks, field, "network")
            addresses[net_name] = _ip(value, field)
            _host_on(addresses[net_name], networks[net_name], field)
            _claim(taken, addresses[net_name], field, _ADDRESS_FIX)
        memory_mb = _int(raw.get("memory_mb", 768), f"{where}.memory_mb", 64)
        nodes[name] = Node(
            name,
            tuple(roles),
            MappingProxyType(addresses),
            memory_mb,
            _int(raw.get("cpus", 1), f"{where}.cpus"),
        )
    return nodes


def _vips(
    data: Any, networks: dict[str, Network], taken: dict[IPv4Address, str], resources: dict[str, str]
) -> dict[str, Vip]:
    vips: dict[str, Vip] = {}
    for name, raw in _items(data, "vips"):
        where = f"vips.{name}"
        _section(raw, where, ("address", "network", "resource"))
        vip = Vip(
            name,
            _ip(raw["address"], f"{where}.address"),
            _ref(raw["network"], networks, f"{where}.network", "network"),
            _resource(raw["resource"], f"{where}.resource"),
        )
        _host_on(vip.address, networks[vip.network], f"{where}.address")
        _claim(taken, vip.address, f"{where}.address", _ADDRESS_FIX)
        _claim(resources, vip.resource, f"{where}.resource", _RESOURCE_FIX)
        vips[name] = vip
    return vips


def _services(data: Any, vips: dict[str, Vip], resources: dict[str, str]) -> dict[str, Service]:
    services: dict[str, Service] = {}
    minors: dict[int, str] = {}  # DRBD minor -> the field using it
    ports: dict[int, str] = {}  # DRBD port -> the field using it
    for name, raw in _items(data, "services"):
        where = f"services.{name}"
        _section(raw, where, ("vip", "port"), ("group", "disk_mb", "drbd_minor", "drbd_port"))
        vip = _ref(raw["vip"], vips, f"{where}.vip", "vip")
        group = None
        if raw.get("group") is not None:
            group = _resource(raw["group"], f"{where}.group")
            _claim(resources, group, f"{where}.group", _RESOURCE_FIX)
        minor, port = raw.get("drbd_minor"), raw.get("drbd_port")
        if (minor is None) != (port is None):
            _fail(where, "drbd_minor and drbd_port must be set together", "set both, or neither")
        if minor is not None:
            _claim(
                minors,
                _int(minor, f"{where}.drbd_minor", 0),
                f"{where}.drbd_minor",
                "give each DRBD device its own minor",
            )
            _claim(
                ports,
                _port(port, f"{where}.drbd_port"),
                f"{where}.drbd_port",
                "give each DRBD device its own port",
            )
        services[name] = Service(
            name,
            group,
            vip,
            _port(raw["port"], f"{where}.port"),
            _int(raw.get("disk_mb", 256), f"{where}.disk_mb"),
            minor,
            port,
        )
    return services


def _cluster(data: Any, nodes: dict[str, Node]) -> ClusterOptions:
    optional = tuple(k for k in _CLUSTER_FIELDS if k not in _CLUSTER_REQUIRED)
    values = {
        k: _CLUSTER_FIELDS[k](v, f"cluster.{k}")
        for k, v in _section(data, "cluster", _CLUSTER_REQUIRED, optional).items()
    }
    values.setdefault("consensus_ms", int(1.2 * values["token_ms"]))
    cluster = ClusterOptions(**values, nodelist_size=sum(1 for n in nodes.values() if n.has_role("pacemaker")))
    _check_cluster(cluster, "cluster", nodes, values)
    return cluster


def _profiles(data: Any, raw_cluster: dict, cluster: ClusterOptions, nodes: dict[str, Node]) -> dict[str, Profile]:
    profiles: dict[str, Profile] = {}
    for name, raw in _items(data, "profiles"):
        where = f"profiles.{name}"
        _section(raw, where, ("description",), tuple(_CLUSTER_FIELDS))
        overrides = {k: _CLUSTER_FIELDS[k](v, f"{where}.{k}") for k, v in raw.items() if k != "description"}
        if "token_ms" in overrides and "consensus_ms" not in overrides and "consensus_ms" not in raw_cluster:
            # corosync's default consensus follows the token
            overrides["consensus_ms"] = int(1.2 * overrides["token_ms"])
        _check_cluster(dataclasses.replace(cluster, **overrides), where, nodes, overrides)
        profiles[name] = Profile(name, _str(raw["description"], f"{where}.description"), MappingProxyType(overrides))
    return profiles
