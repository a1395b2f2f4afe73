"""What a fault is: the Fault base class (its label, parameters, validation against a scenario and resolving of
its target selector), the FaultEnv it runs in, FaultError, and the FAULTS registry every fault joins with @fault.

Separate from the faults themselves (lab/fault_vocabulary.py) and from building them out of data (lab/faults.py),
which both use it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Self

from lab.providers.base import Provider
from lab.scenario import Scenario
from lab.targets import Live, TargetError, check, resolve


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
