"""What a scenario is, as frozen dataclasses: its networks, nodes, VIPs, services, cluster options and profiles,
the topologies and roles a scenario may name, and ScenarioError.

Separate from the parsing (lab/scenario.py, lab/scenario_sections.py) so the rest of the harness reads one small
module for the shape of a scenario; lab/scenario.py re-exports every name here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from lab.scenario_fields import FieldError
from lab.scenario_quorum import QNETD_ROLE, QDevice

# What a scenario builds; provision/playbook.py maps each to its playbook (lab/ imports nothing from provision/).
TOPOLOGIES = {
    "active-passive": "guide ch. 2-3: Pacemaker running the guide's MySQL and RabbitMQ groups on a shared disk",
    "active-active": "guide ch. 6-9: Galera, a RabbitMQ cluster and APIs behind HAProxy + keepalived",
    "api-cluster": "guide ch. 2-4: ch. 3's MySQL and RabbitMQ pair, and the API nodes' own Pacemaker cluster running "
    "g_services_api (Keystone, Glance) through ch. 3's VIPs",
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
    # which corosync cluster a pacemaker node is in: "" for a scenario's one cluster; a name where a scenario holds
    # two (guide ch. 4: the API nodes' own cluster beside ch. 3's pair)
    cluster: str = ""

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
    # `on-marked-down shutdown-sessions` on every server: HAProxy drops the sessions to a server it marks DOWN (else,
    # mode tcp, they hang until `timeout server`: a pooled database connection to a crashed Galera server)
    haproxy_shutdown_sessions: bool = False
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

    @property
    def clusters(self) -> dict[str, list[str]]:
        """Cluster name -> its pacemaker nodes, in scenario order ("" for a scenario's one unnamed cluster)."""
        out: dict[str, list[str]] = {}
        for n in self.nodes_with_role("pacemaker"):
            out.setdefault(n.cluster, []).append(n.name)
        return out

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
