"""The check of a failover against its floor (lab/floors.py): floor <= downtime <= limit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab.checks.base import Check
from lab.floors import LIMIT_FACTOR, Floor

if TYPE_CHECKING:
    from lab.report import Event


def floor_check(prefix: str, ev: Event, fl: Floor) -> Check:
    """floor <= downtime <= limit: below the floor the history missed part of the outage; past the limit something
    waited that neither the timers nor the agents made it wait. An incomplete floor checks the lower side only."""
    down = ev.downtime_ms
    upper = f" <= limit {ev.limit_ms} ms (floor x {LIMIT_FACTOR} + resolution)" if ev.limit_ms is not None else ""
    passed = down is not None and fl.total_ms <= down and (ev.limit_ms is None or down <= ev.limit_ms)
    shown = "never recovered" if down is None else f"{down} ms"
    detail = f"{ev.service}: floor {fl.total_ms} ms <= downtime {shown}{upper}; floor: {fl.method}"
    return Check(f"{prefix}downtime:{ev.service} within its floor and limit", passed, detail)
