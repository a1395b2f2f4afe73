"""The fault vocabulary: every fault a frozen value with `apply` and `heal`, and one registry by name that the
Trial, the CLI and schedules all use (os-faults' plain words, Jepsen's faults as values).

A fault names its target with a selector (lab/targets.py) resolved when it is applied; `resolve` returns the
same fault with the concrete node, which is what is recorded, applied and later healed. Each fault heals on its
own: a partition removes only its own nftables table, a cut restores only its own NIC."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Self

from lab.providers.base import Provider
from lab.scenario import Scenario
from lab.targets import Live, TargetError, check, resolve

# Which process is "the service" for kill_service/stop_service, per service name (others: the name itself).
SERVICE_PROCESS = {
    "mysql": "mariadbd",
    "galera": "mariadbd",
    "rabbitmq": "beam.smp",
    "corosync": "corosync",
    "pacemaker": "pacemakerd",
}
SERVICES = ("mysql", "galera", "rabbitmq", "corosync", "pacemaker", "haproxy", "keepalived", "memcached")


class FaultError(ValueError):
    """A fault that cannot be built or aimed: unknown name, parameter or target. The message names the fix."""


class FaultEnv(Protocol):
    """What a fault may use: the provider, and the lab's ways to start what a fault stopped."""

    provider: Provider
    scenario: Scenario

    def live(self) -> Live: ...
    def restart_node(self, node: str) -> None: ...
    def rejoin(self, node: str) -> None: ...
    def start_service(self, node: str, service: str) -> None: ...


@dataclass(frozen=True, kw_only=True)
class Fault:
    name: ClassVar[str]
    help: ClassVar[str]
    # parameters left out of params() (history, report, describe) while empty: added later, so what was recorded
    # before them reads the same
    quiet: ClassVar[tuple[str, ...]] = ()
    target: str  # a selector until `resolve`, a node name after
    chosen_by: str | None = dataclasses.field(default=None, compare=False)  # the selector it was resolved from

    # -- what a fault is
    @property
    def label(self) -> str:
        """The report's name for it: `kill_service:mysql` says more than `kill_service`."""
        service = getattr(self, "service", None)
        return f"{self.name}:{service}" if service else self.name

    def params(self) -> dict[str, Any]:
        """Parameters besides the target, as plain data (the history and the report record them)."""
        skip = {"target", "chosen_by"}
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name not in skip:
                v = getattr(self, f.name)
                if f.name in self.quiet and not v:
                    continue
                out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    def describe(self) -> str:
        extra = " ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in self.params().items())
        via = f" ({self.chosen_by})" if self.chosen_by and self.chosen_by != self.target else ""
        return f"{self.name} {self.target}{via}" + (f" {extra}" if extra else "")

    # -- validation and aiming
    def check(self, scenario: Scenario) -> None:
        """Raise FaultError if this fault cannot work on `scenario` (called before anything runs)."""
        try:
            check(self.target, scenario)
        except TargetError as exc:
            raise FaultError(f"{self.name}: target {exc}") from None
        if hasattr(self, "network"):
            net = network_named(scenario, self.network, self.name)
            # a node-aimed network fault needs the node to have a NIC there (selectors are checked when resolved)
            if self.target in scenario.nodes and net not in scenario.nodes[self.target].addresses:
                raise FaultError(f"{self.name}: {self.target} has no NIC on {net}")
            for other in getattr(self, "others", ()):
                if other in scenario.nodes and net not in scenario.nodes[other].addresses:
                    raise FaultError(f"{self.name}: others: {other} has no NIC on {net}")

    def resolve(self, env: FaultEnv) -> Self:
        try:
            node = resolve(self.target, env.live())
        except TargetError as exc:
            raise FaultError(f"{self.name}: {exc}") from None
        me = dataclasses.replace(self, target=node, chosen_by=self.chosen_by or self.target)
        network = getattr(self, "network", None)
        if network:  # a purpose (management, replication) becomes the scenario's name for that network
            # `network` is a field of the subclasses that have one (Cut and the network faults), not of Fault
            me = dataclasses.replace(me, **{"network": network_named(env.scenario, network, self.name)})
        return me

    # -- doing it
    def apply(self, env: FaultEnv) -> None:
        raise NotImplementedError

    def heal(self, env: FaultEnv) -> None:
        """Undo this fault only (default: nothing to undo)."""


def network_named(scenario: Scenario, name: str, fault: str) -> str:
    """A network by its name, or by its purpose (`management`, `replication`), so a schedule written for one
    scenario runs unchanged on another that names its networks otherwise."""
    if name in scenario.networks:
        return name
    by_purpose = [n.name for n in scenario.networks.values() if n.purpose == name]
    if by_purpose:
        return by_purpose[0]
    known = ", ".join([*scenario.networks, *sorted({n.purpose for n in scenario.networks.values()})])
    raise FaultError(f"{fault}: no network {name!r}; use one of: {known} (a network's name or purpose)")


FAULTS: dict[str, type[Fault]] = {}


def fault(cls: type[Fault]) -> type[Fault]:
    FAULTS[cls.name] = cls
    return cls


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


# ------------------------------------------------------------------------------------------- building faults
def make(name: str, target: str, **params: Any) -> Fault:
    """A fault from its name and parameters as data (YAML, CLI strings or Python values)."""
    cls = FAULTS.get(name)
    if cls is None:
        raise FaultError(f"unknown fault {name!r}: use one of {', '.join(FAULTS)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in ("target", "chosen_by")}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise FaultError(f"{name}: unknown parameter {', '.join(unknown)}; {name} takes {_signature(cls) or 'none'}")
    missing = [k for k, f in fields.items() if f.default is dataclasses.MISSING and k not in params]
    if missing:
        raise FaultError(f"{name}: missing parameter {', '.join(missing)}; {name} takes {_signature(cls)}")
    values = {k: _coerce(name, k, hints[k], v) for k, v in params.items()}
    return cls(target=str(target), **values)


def _coerce(fault_name: str, key: str, hint: Any, value: Any) -> Any:
    where = f"{fault_name}: {key}"
    if hint is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "yes", "1"):
            return True
        if str(value).lower() in ("false", "no", "0"):
            return False
        raise FaultError(f"{where}: {value!r} is not true or false")
    if hint is int:
        try:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        except (TypeError, ValueError):
            raise FaultError(f"{where}: {value!r} is not a whole number") from None
    if typing.get_origin(hint) is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise FaultError(f"{where}: write a list of node selectors")
        return tuple(str(i).strip() for i in items if str(i).strip())
    return str(value)


def _signature(cls: type[Fault]) -> str:
    parts = []
    for f in dataclasses.fields(cls):
        if f.name in ("target", "chosen_by"):
            continue
        parts.append(f.name if f.default is dataclasses.MISSING else f"[{f.name}={f.default!r}]")
    return " ".join(parts)


def catalogue() -> list[tuple[str, str, str]]:
    """(name, parameters, help) of every fault: the CLI's help and the README come from here."""
    return [(n, _signature(c), c.help) for n, c in FAULTS.items()]
