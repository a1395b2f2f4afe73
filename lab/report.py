"""The verdict of one scenario run: what was injected, how long services were down, which checks held."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lab.checks.availability import MEASURED_BY, Outage
from lab.checks.base import Check
from lab.floors import LIMIT_FACTOR


def iso_utc(epoch: float) -> str:
    """ISO-8601 in UTC with milliseconds: 2025-11-25T12:00:00.000Z."""
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Event:
    fault: str
    target: str
    at: float  # epoch seconds when the fault was injected
    service: str | None
    downtime_ms: int | None  # None = never recovered
    recovered_on: str | None  # node the service came back on
    failed_ops: int = 0
    bound_ms: int | None = None
    measured_by: str = MEASURED_BY
    indeterminate_ops: int = 0
    probe_gap_ms: int | None = None  # the VIP's TCP connect probe, same method
    vip: str | None = None
    vip_from: list[str] | None = None  # holders sampled just before the fault
    vip_to: list[str] | None = None  # holders at the end of the trial
    floor_ms: int | None = None  # the least this failover could take (lab/floors.py): a true lower bound
    limit_ms: int | None = None  # what the test allows: floor x LIMIT_FACTOR + the history's resolution
    # every outage of the service in this fault's window is an event: this one is the nth in time of `outages`; the
    # first of a window's events is its longest (the failover, which the floor is of), and holds their sum
    nth: int = 1
    outages: int = 1
    total_downtime_ms: int | None = None  # None = one of them never recovered
    flap: bool = False  # another outage of the window than its longest: no floor, VIP move or placement of its own

    @classmethod
    def from_outage(
        cls,
        fault: str,
        target: str,
        at: float,
        outage: Outage,
        *,
        recovered_on: str | None,
        bound_ms: int | None,
    ) -> Event:
        return cls(
            fault,
            target,
            at,
            outage.service,
            outage.downtime_ms,
            recovered_on,
            outage.failed_ops,
            bound_ms,
            indeterminate_ops=outage.indeterminate_ops,
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "at": iso_utc(self.at)}


def vip_move_text(
    vip: str | None, vip_from: Sequence[str] | None, vip_to: Sequence[str] | None, flap: bool, *, arrow: str = "->"
) -> str | None:
    """`from->to`, spelt alike by every report; None when no move is the event's own (no VIP, or a flap's)."""
    if not vip or flap:  # a flap's VIP move is its window's longest outage's
        return None
    return f"{'+'.join(vip_from or ['-'])}{arrow}{'+'.join(vip_to or ['-'])}"


@dataclass
class Report:
    scenario: str
    provider: str
    profile: str
    started_at: float  # epoch seconds
    duration_s: float
    versions: dict[str, str] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)  # phase -> wall seconds (up, provision, trial:*)
    memory_kib: dict[str, dict[str, int]] = field(default_factory=dict)  # node -> {rss, pss, resident}, provisioned
    # each node's votequorum transitions per trial: {trial, node, time, at_ms (from the first fault), changes}
    quorum: list[dict[str, Any]] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """`pass` when every check passed; a report without checks proves nothing and fails."""
        return "pass" if self.checks and all(c.passed for c in self.checks) else "fail"

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "provider": self.provider,
            "profile": self.profile,
            "verdict": self.verdict,
            "started_at": iso_utc(self.started_at),
            "duration_s": round(self.duration_s, 3),
            "versions": dict(self.versions),
            "events": [e.to_dict() for e in self.events],
            "checks": [c.to_dict() for c in self.checks],
            "notes": list(self.notes),
            "timings_s": dict(self.timings_s),
            "memory_kib": dict(self.memory_kib),
            "quorum": list(self.quorum),
        }

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "report.json"
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    def summary_table(self) -> str:
        head = (
            f"{self.scenario} [{self.provider}, profile {self.profile}] "
            f"started {iso_utc(self.started_at)}, {self.duration_s:.1f} s"
        )
        row = "{:<22} {:<11} {:<10} {:>11} {:>8} {:>8} {:>9}  {:<18} {}"
        lines = [
            head,
            "",
            row.format(
                "fault", "target", "service", "downtime_ms", "floor_ms", "limit_ms", "bound_ms", "VIP moved",
                "recovered_on",
            ),
        ]
        for e in self.events:
            downtime = "never" if e.downtime_ms is None else str(e.downtime_ms)
            bound = "-" if e.bound_ms is None else str(e.bound_ms)
            floor = "-" if e.floor_ms is None else str(e.floor_ms)
            limit = "-" if e.limit_ms is None else str(e.limit_ms)
            moved = vip_move_text(e.vip, e.vip_from, e.vip_to, e.flap) or "-"
            where = e.recovered_on or "-"
            fault = e.fault if e.outages <= 1 else f"{e.fault} {e.nth}/{e.outages}"  # the nth of its outages
            lines.append(row.format(fault, e.target, e.service or "-", downtime, floor, limit, bound, moved, where))
        lines.append("")
        for c in self.checks:
            detail = c.detail if len(c.detail) <= 100 else c.detail[:97] + "..."
            lines.append(f"{'pass' if c.passed else 'FAIL':<4}  {c.name:<24} {detail}")
        if not self.checks:
            lines.append("FAIL  (no checks ran)")
        lines.append("")
        lines.append("downtime: " + MEASURED_BY)
        limit = f"floor x {LIMIT_FACTOR} + the history's resolution"
        lines.append(f"floor: the least the failover could take (lab/floors.py); limit: {limit}")
        lines.append(f"verdict: {self.verdict}")
        return "\n".join(lines) + "\n"
