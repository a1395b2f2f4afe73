"""The check of a failover against its floor (lab/floors.py): floor <= downtime <= limit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab.checks.base import Check
from lab.floors import LIMIT_FACTOR, Floor

if TYPE_CHECKING:
    from lab.report import Event


def floor_check(prefix: str, ev: Event, fl: Floor) -> Check:
    """floor <= downtime, and all the fault's outages of the service together <= limit: below the floor the history
    missed part of the outage; past the limit something waited that neither the timers nor the agents made it wait
    (or the service flapped: three outages of 5 s are 15 s lost). An incomplete floor checks the lower side only."""
    down = ev.downtime_ms
    total = down if ev.outages <= 1 else ev.total_downtime_ms
    limited = ev.limit_ms is None or (total is not None and total <= ev.limit_ms)
    passed = down is not None and fl.total_ms <= down and limited
    shown = "never recovered" if down is None else f"{down} ms"
    if ev.outages > 1:
        shown += f" (the longest of {ev.outages} outages, together {total if total is not None else 'never'} ms)"
    upper = f" <= limit {ev.limit_ms} ms (floor x {LIMIT_FACTOR} + resolution)" if ev.limit_ms is not None else ""
    detail = f"{ev.service}: floor {fl.total_ms} ms <= downtime {shown}{upper}; floor: {fl.method}"
    return Check(f"{prefix}downtime:{ev.service} within its floor and limit", passed, detail)
