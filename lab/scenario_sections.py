"""The parsers of a scenario's sections (networks, nodes, vips, services, cluster, profiles) and the rules that
span them: corosync's consensus minimum, two_node's two votes, what each topology's playbook needs, and what the
playbooks can run of a qdevice.

Separate from lab/scenario.py, which reads the file and puts the sections together (`_parse`): each parser here
takes one section's YAML data and returns its dataclasses (lab/scenario_model.py), or fails naming the field.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection
from ipaddress import IPv4Address
from types import MappingProxyType
from typing import Any

from lab.scenario_fields import (
    _bool,
    _cidr,
    _claim,
    _fail,
    _host_on,
    _int,
    _ip,
    _items,
    _policy,
    _port,
    _ref,
    _resource,
    _section,
    _show,
    _str,
)
from lab.scenario_model import KNOWN_ROLES, ClusterOptions, Network, Node, Profile, Service, Vip
from lab.scenario_quorum import QUORUM_FIELDS, check_quorum

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
    "haproxy_shutdown_sessions": _bool,
    "galera_suspect_timeout_ms": _int,
    "quorum_queues": _bool,
}
_CLUSTER_REQUIRED = ("token_ms", "two_node", "no_quorum_policy", "stonith")
_ADDRESS_FIX = "give every node address, VIP and gateway its own IP"
_RESOURCE_FIX = "give every Pacemaker resource (VIP resource, service group) its own id"


def _check_cluster(opts: ClusterOptions, where: str, nodes: dict[str, Node], given: Collection[str]) -> None:
    """Rules that span fields: corosync's consensus minimum, two_node's two votes, and the quorum options' rules
    (`given`: the keys the section writes itself), for each cluster the scenario holds."""
    minimum = int(1.2 * opts.token_ms)
    if opts.consensus_ms < minimum:
        _fail(
            f"{where}.consensus_ms",
            f"{opts.consensus_ms} is below 1.2 * token_ms = {minimum}, which corosync refuses",
            f"set consensus_ms >= {minimum}, or drop it to default to 1.2 * token_ms",
        )
    for name, members in clusters(nodes).items():
        pacemaker_nodes = [n.name for n in members.values() if n.has_role("pacemaker")]
        of = f" in cluster {name}" if name else ""
        if opts.two_node and len(pacemaker_nodes) != 2:
            _fail(
                f"{where}.two_node",
                f"two_node is true but {len(pacemaker_nodes)} nodes{of} have the pacemaker role "
                f"({', '.join(pacemaker_nodes) or 'none'})",
                "set two_node: false, or give exactly two nodes that role" + (" in each cluster" if of else ""),
            )
        check_quorum(opts, where, members, given)


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
    named = clusters(nodes)
    if topology != "api-cluster" and len(named) > 1:
        _fail("nodes", f"{topology} runs one corosync cluster, not {len(named)} ({', '.join(named)})",
              "delete the nodes' `cluster:`, or use topology: api-cluster (ch. 3's pair + ch. 4's API "
              "nodes)")  # fmt: skip
    if topology == "api-cluster":
        _check_api_cluster(named, services)
    if topology in ("active-passive", "quorum", "api-cluster"):
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


def _check_api_cluster(named: dict[str, dict[str, Node]], services: dict[str, Service]) -> None:
    """Guide ch. 4: the API nodes' own cluster (every node of it with the api role) and ch. 3's pair running MySQL
    (the APIs' database, through its VIP)."""
    api = [c for c, members in named.items() if any(n.has_role("api") for n in members.values())]
    fix = "give the API nodes roles [pacemaker, api] and `cluster: api`, and ch. 3's pair [pacemaker, mysql, rabbitmq]"
    if len(named) != 2 or len(api) != 1:
        _fail("nodes", f"api-cluster needs two corosync clusters, one of API nodes, not {len(named)} "
              f"({len(api)} with the api role)", fix)  # fmt: skip
    for n in named[api[0]].values():
        if n.has_role("pacemaker") and not n.has_role("api"):
            _fail(f"nodes.{n.name}.roles", f"{n.name} is in the API cluster {api[0]!r} without the api role", fix)
    for c in named:
        size = sum(1 for n in named[c].values() if n.has_role("pacemaker"))
        if size < 2:
            _fail("nodes", f"cluster {c or '(unnamed)'} has {size} pacemaker node(s)", "give each cluster two")
    for need in ("mysql", "keystone-public"):
        if need not in services:
            _fail("services", f"api-cluster needs a {need} service (ch. 4's APIs use ch. 3's MySQL, Keystone "
                  "serves first)", f"add services.{need}")  # fmt: skip


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
        _section(raw, where, ("roles", "addresses"), ("memory_mb", "cpus", "cluster"))
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
            _cluster_name(raw, where, roles),
        )
    return nodes


def _cluster_name(raw: dict, where: str, roles: list[str]) -> str:
    if "cluster" not in raw:
        return ""
    name = _str(raw["cluster"], f"{where}.cluster")
    if "pacemaker" not in roles:
        _fail(f"{where}.cluster", "only a node with the pacemaker role is in a corosync cluster",
              "add pacemaker to its roles, or delete `cluster:`")  # fmt: skip
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,15}", name):
        _fail(f"{where}.cluster", f"{name!r} is not a short lower-case name", "write e.g. `cluster: api`")
    return name


def clusters(nodes: dict[str, Node]) -> dict[str, dict[str, Node]]:
    """Cluster name -> its nodes (pacemaker nodes by their `cluster:`; every other node in each, as the quorum
    rules look up arbiters among them)."""
    names = list(dict.fromkeys(n.cluster for n in nodes.values() if n.has_role("pacemaker"))) or [""]
    return {c: {k: n for k, n in nodes.items() if not n.has_role("pacemaker") or n.cluster == c} for c in names}


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
    group_vips: dict[str, str] = {}  # group -> its VIP: services behind one VIP may share a group (ch. 4's APIs)
    for name, raw in _items(data, "services"):
        where = f"services.{name}"
        _section(raw, where, ("vip", "port"), ("group", "disk_mb", "drbd_minor", "drbd_port"))
        vip = _ref(raw["vip"], vips, f"{where}.vip", "vip")
        group = None
        if raw.get("group") is not None:
            group = _resource(raw["group"], f"{where}.group")
            if group_vips.get(group) != vip:
                _claim(resources, group, f"{where}.group", _RESOURCE_FIX + " (services share a group only behind "
                       "one VIP)")  # fmt: skip
            group_vips[group] = vip
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
    # corosync's token timeout grows with its nodelist: the largest cluster's (every cluster runs these options)
    size = max(sum(1 for n in c.values() if n.has_role("pacemaker")) for c in clusters(nodes).values())
    cluster = ClusterOptions(**values, nodelist_size=size)
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
