"""The fault vocabulary: node faults (crash, poweroff, reset, freeze, standby), service faults (kill, stop and
start a service) and network faults (cut, partition, packet_loss), each a frozen value with `apply` and `heal`,
registered by name in FAULTS as it is defined.

Separate from the base class and registry (lab/fault_base.py) and from building faults out of data
(lab/faults.py, which imports this module so that every fault is registered).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Self

from lab.fault_base import Fault, FaultEnv, FaultError, fault, network_named
from lab.scenario import Scenario
from lab.targets import TargetError, check, resolve

# Which process is "the service" for kill_service/stop_service, per service name (others: the name itself).
SERVICE_PROCESS = {
    "mysql": "mariadbd",
    "galera": "mariadbd",
    "rabbitmq": "beam.smp",
    "corosync": "corosync",
    "pacemaker": "pacemakerd",
    "keystone": "uwsgi",  # the only uwsgi of a node (provision/keystone.py)
    "glance": "glance-api",  # its launcher's name (provision/files/glance-api)
    "cinder": "cinder-api",  # uwsgi under Cinder's name (provision/uwsgi_api.py)
    "neutron": "neutron-server",  # uwsgi under Neutron's name
    "ceilometer": "ceilometer-poll",  # the central agent's master and worker (provision/ceilometer.PROCESS)
}
SERVICES = (
    "mysql", "galera", "rabbitmq", "corosync", "pacemaker", "haproxy", "keepalived", "memcached", "keystone", "glance",
    "cinder", "neutron", "ceilometer",
)  # fmt: skip


# ------------------------------------------------------------------------------------------- node faults
@fault
@dataclass(frozen=True, kw_only=True)
class Crash(Fault):
    name = "crash"
    help = "power cut: every process dies at once, links go dark; heal powers it on and it rejoins"

    def apply(self, env: FaultEnv) -> None:
        env.provider.crash(self.target)

    def heal(self, env: FaultEnv) -> None:
        env.restart_node(self.target)


@fault
@dataclass(frozen=True, kw_only=True)
class Poweroff(Fault):
    name = "poweroff"
    help = "orderly shutdown (ACPI power button; libvirt only): services stop as the init system stops them"

    def apply(self, env: FaultEnv) -> None:
        env.provider.poweroff(self.target)

    def heal(self, env: FaultEnv) -> None:
        env.restart_node(self.target)


@fault
@dataclass(frozen=True, kw_only=True)
class Reset(Fault):
    name = "reset"
    help = "hardware reset: the node reboots at once, without its cluster services; heal starts them (rejoin)"

    def apply(self, env: FaultEnv) -> None:
        env.provider.reset(self.target)

    def heal(self, env: FaultEnv) -> None:
        env.rejoin(self.target)  # it is running again already: start its cluster services


@fault
@dataclass(frozen=True, kw_only=True)
class Freeze(Fault):
    name = "freeze"
    help = "SIGSTOP every process of the node (a VM paused); heal thaws it"

    def apply(self, env: FaultEnv) -> None:
        env.provider.freeze(self.target)

    def heal(self, env: FaultEnv) -> None:
        env.provider.thaw(self.target)


@fault
@dataclass(frozen=True, kw_only=True)
class Standby(Fault):
    name = "standby"
    help = "Pacemaker node standby (an orderly migration of its resources); heal puts it online"

    def apply(self, env: FaultEnv) -> None:
        env.provider.run(self.target, f"crm node standby {self.target}", check=True, timeout=60)

    def heal(self, env: FaultEnv) -> None:
        env.provider.run(self.target, f"crm node online {self.target}", check=True, timeout=60)


# ------------------------------------------------------------------------------------------- service faults
@dataclass(frozen=True, kw_only=True)
class _ServiceFault(Fault):
    service: str

    def check(self, scenario: Scenario) -> None:
        super().check(scenario)
        if self.service not in SERVICES:
            raise FaultError(f"{self.name}: unknown service {self.service!r}; use one of: {', '.join(SERVICES)}")

    @property
    def process(self) -> str:
        return SERVICE_PROCESS.get(self.service, self.service)


@fault
@dataclass(frozen=True, kw_only=True)
class KillService(_ServiceFault):
    name = "kill_service"
    help = "SIGKILL one service's processes on the node; heal starts it again"

    def apply(self, env: FaultEnv) -> None:
        env.provider.kill_service(self.target, self.process)

    def heal(self, env: FaultEnv) -> None:
        env.start_service(self.target, self.service)


@fault
@dataclass(frozen=True, kw_only=True)
class StopService(_ServiceFault):
    name = "stop_service"
    help = "SIGTERM one service and wait until it exits (an orderly stop); heal starts it again"

    def apply(self, env: FaultEnv) -> None:
        env.provider.stop_service(self.target, self.process)

    def heal(self, env: FaultEnv) -> None:
        env.start_service(self.target, self.service)


@fault
@dataclass(frozen=True, kw_only=True)
class StartService(_ServiceFault):
    name = "start_service"
    help = "start a killed or stopped service on the node (nothing to heal)"

    def apply(self, env: FaultEnv) -> None:
        env.start_service(self.target, self.service)


# ------------------------------------------------------------------------------------------- network faults
@dataclass(frozen=True, kw_only=True)
class _NetworkFault(Fault):
    network: str

    @property
    def table(self) -> str:
        """Its own nftables table name, so healing it touches no other fault's rules."""
        digest = hashlib.sha1(json.dumps([self.name, self.target, self.params()]).encode()).hexdigest()[:8]
        return f"{self.name[:4]}_{digest}"

    def heal(self, env: FaultEnv) -> None:
        env.provider.filter_remove(self.table)


@fault
@dataclass(frozen=True, kw_only=True)
class Cut(Fault):
    name = "cut"
    help = "take one NIC's link down (cable pulled); heal restores that NIC only"
    network: str

    def apply(self, env: FaultEnv) -> None:
        env.provider.cut(self.target, self.network)

    def heal(self, env: FaultEnv) -> None:
        env.provider.restore(self.target, self.network)


@fault
@dataclass(frozen=True, kw_only=True)
class Partition(_NetworkFault):
    name = "partition"
    help = (
        "drop frames between the target's side (the target and `side`) and `others` on one network (one_way: "
        "from the target's side only)"
    )
    others: tuple[str, ...] = ()  # selectors; empty: every other node on the network
    one_way: bool = False
    side: tuple[str, ...] = ()  # selectors of more nodes on the target's side (a 4:3 split: three beside it)
    quiet = ("side",)

    def check(self, scenario: Scenario) -> None:
        super().check(scenario)
        for field_name in ("others", "side"):
            for o in getattr(self, field_name):
                try:
                    check(o, scenario)
                except TargetError as exc:
                    raise FaultError(f"partition: {field_name}: {exc}") from None

    def resolve(self, env: FaultEnv) -> Self:
        me = super().resolve(env)
        live = env.live()
        try:
            side = tuple(resolve(o, live) for o in self.side)
        except TargetError as exc:
            raise FaultError(f"partition: side: {exc}") from None
        mine = {me.target, *side}
        try:
            others = tuple(resolve(o, live) for o in self.others) or tuple(
                # the nodes that are up: a powered-off VM has no bridge port to filter on
                n
                for n, node in env.scenario.nodes.items()
                if me.network in node.addresses and n not in mine and env.provider.is_running(n)
            )
        except TargetError as exc:
            raise FaultError(f"partition: others: {exc}") from None
        both = sorted(mine & set(others))
        if both:
            raise FaultError(f"partition: {', '.join(both)} {'is' if len(both) == 1 else 'are'} on both sides")
        off = [n for n in side if me.network not in env.scenario.nodes[n].addresses]
        if off:
            raise FaultError(f"partition: side: {', '.join(off)} not on {me.network}")
        if not others:
            raise FaultError(f"partition: nobody else on {me.network} to cut {me.target} off from")
        return dataclasses.replace(me, others=others, side=side)

    def apply(self, env: FaultEnv) -> None:
        p = env.provider
        a = [p.port(n, self.network) for n in (self.target, *self.side)]
        b = [p.port(n, self.network) for n in self.others]
        rules = [f"iifname {_set(a)} oifname {_set(b)} drop"]
        if not self.one_way:
            rules.append(f"iifname {_set(b)} oifname {_set(a)} drop")
        p.filter_add(self.table, rules)


@fault
@dataclass(frozen=True, kw_only=True)
class PacketLoss(_NetworkFault):
    name = "packet_loss"
    help = (
        "drop `percent`% of frames at random (nftables numgen; this kernel has no netem): on the target's NIC on "
        "`network` (direction in, out or both), or on every port of the network with target `all`"
    )
    percent: int
    direction: str = "both"

    def check(self, scenario: Scenario) -> None:
        if self.target != "all":
            super().check(scenario)
        else:
            network_named(scenario, self.network, self.name)
        if not 1 <= self.percent <= 100:
            raise FaultError(f"packet_loss: percent {self.percent} is not between 1 and 100")
        if self.direction not in ("in", "out", "both"):
            raise FaultError(f"packet_loss: direction {self.direction!r}: use in, out or both")
        if self.target == "all" and self.direction != "both":
            raise FaultError("packet_loss: on a whole network the direction is both; name a node for in or out")

    def resolve(self, env: FaultEnv) -> Self:
        if self.target != "all":
            return super().resolve(env)
        return dataclasses.replace(self, network=network_named(env.scenario, self.network, self.name))

    def apply(self, env: FaultEnv) -> None:
        p = env.provider
        drop = f"numgen random mod 100 < {self.percent} drop"
        if self.target == "all":
            on_net = [
                n
                for n, node in env.scenario.nodes.items()
                if self.network in node.addresses and env.provider.is_running(n)
            ]
            ports = [p.port(n, self.network) for n in on_net]
            rules = [f"iifname {_set(ports)} {drop}"]  # each frame crosses the bridge once: N% of all of them
        else:
            port = _set([p.port(self.target, self.network)])
            rules = ([f"iifname {port} {drop}"] if self.direction in ("out", "both") else []) + (
                [f"oifname {port} {drop}"] if self.direction in ("in", "both") else []
            )
        p.filter_add(self.table, rules)


def _set(ports: list[str]) -> str:
    return "{ " + ", ".join(json.dumps(x) for x in ports) + " }"
