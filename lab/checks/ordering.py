"""Were a group's members stopped and started in the order the configuration says?

Evidence: the controller's "Result of <op> operation for <rsc> on <node>: ok" lines in
pacemaker.log, which carry millisecond timestamps (crm_mon's operation history has only seconds).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from lab.checks.base import Check

_LINE = re.compile(
    r"^(?P<ts>\w{3} +\d+ \d\d:\d\d:\d\d\.\d{3}) \S+ pacemaker-controld.*Result of (?P<op>start|stop) operation "
    r"for (?P<rsc>\S+) on (?P<node>\S+): (?P<result>\S+)"
)


@dataclass(frozen=True)
class OpResult:
    time: datetime
    op: str
    resource: str
    node: str
    result: str


def parse(lines: Iterable[str], year: int = 2000, since: datetime | None = None) -> list[OpResult]:
    """Op results in time order; `since` (same `year`, local time as the log writes it) keeps one trial's."""
    out = []
    for line in lines:
        m = _LINE.match(line)
        if m:
            ts = datetime.strptime(f"{year} {m['ts']}", "%Y %b %d %H:%M:%S.%f")
            if since is None or ts >= since:
                out.append(OpResult(ts, m["op"], m["rsc"], m["node"], m["result"]))
    return sorted(out, key=lambda r: r.time)


def group_order(results: Sequence[OpResult], members: Sequence[str], old: str, new: str) -> Check:
    """A group moving old -> new: stops on `old` in reverse member order, all before the first start
    on `new`, starts in member order."""
    name = f"order:{'>'.join(members)}"
    stops = [r for r in results if r.op == "stop" and r.node == old and r.resource in members]
    starts = [r for r in results if r.op == "start" and r.node == new and r.resource in members]
    problems = []
    stop_seq = [r.resource for r in stops][-len(members) :]
    start_seq = [r.resource for r in starts][-len(members) :]
    if stop_seq != list(reversed(members)):
        problems.append(f"stops on {old} were {stop_seq}, expected {list(reversed(members))}")
    if start_seq != list(members):
        problems.append(f"starts on {new} were {start_seq}, expected {list(members)}")
    failed = [f"{r.op} {r.resource} on {r.node}: {r.result}" for r in stops + starts if r.result != "ok"]
    problems += failed
    if len(stops) < len(members) or len(starts) < len(members):
        problems.append(f"{len(stops)} stops on {old} and {len(starts)} starts on {new} for {len(members)} members")
    elif stops[-1].time > starts[-len(members)].time:
        problems.append(
            f"{stops[-1].resource} stopped on {old} after {starts[-len(members)].resource} started on {new}"
        )
    if problems:
        return Check(name, False, "; ".join(problems))
    span = (starts[-1].time - stops[-len(members)].time).total_seconds() * 1000
    return Check(
        name,
        True,
        f"stopped {' > '.join(stop_seq)} on {old}, then started {' > '.join(start_seq)} on "
        f"{new}; {span:.0f} ms from first stop to last start (pacemaker.log)",
    )
