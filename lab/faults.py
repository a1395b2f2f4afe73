"""The fault vocabulary: every fault a frozen value with `apply` and `heal`, and one registry by name that the
Trial, the CLI and schedules all use (os-faults' plain words, Jepsen's faults as values).

A fault names its target with a selector (lab/targets.py) resolved when it is applied; `resolve` returns the
same fault with the concrete node, which is what is recorded, applied and later healed. Each fault heals on its
own: a partition removes only its own nftables table, a cut restores only its own NIC.

This module builds faults from data (make: names and parameters from YAML, the CLI or Python) and lists them
(catalogue); beside it:
  fault_base.py        Fault, FaultEnv, FaultError, network_named, and the FAULTS registry (@fault)
  fault_vocabulary.py  every fault: crash ... packet_loss, with SERVICES and SERVICE_PROCESS
Their names are re-exported here, so `from lab.faults import FAULTS, Fault, make` keeps working (and importing
this module registers every fault).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from lab.fault_base import FAULTS, Fault, FaultEnv, FaultError, fault, network_named
from lab.fault_vocabulary import (
    SERVICE_PROCESS,
    SERVICES,
    Crash,
    Cut,
    Freeze,
    KillService,
    PacketLoss,
    Partition,
    Poweroff,
    Reset,
    Standby,
    StartService,
    StopService,
)

__all__ = [
    "FAULTS",
    "SERVICES",
    "SERVICE_PROCESS",
    "Crash",
    "Cut",
    "Fault",
    "FaultEnv",
    "FaultError",
    "Freeze",
    "KillService",
    "PacketLoss",
    "Partition",
    "Poweroff",
    "Reset",
    "Standby",
    "StartService",
    "StopService",
    "catalogue",
    "fault",
    "make",
    "network_named",
]


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
