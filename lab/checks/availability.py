"""How long a service stayed unavailable after a fault, measured from the client's history.

Only completions count (`ok`/`fail`/`info`): an `invoke` says nothing about the server. An
outage is bracketed by acknowledged ops: it starts at the last `ok` completion before the first
failed or indeterminate one and ends at the first `ok` completion after it. Concurrent clients of
the same service share the timeline, so any acknowledged op ends a run of failures.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass

from lab.checks.base import Check
from lab.history import FAIL, INFO, INVOKE, OK, History, Op

MEASURED_BY = "from the last acknowledged op before the first failure to the first acknowledged op after"


@dataclass(frozen=True)
class Outage:
    service: str
    start: float | None  # last ok completion before the first failure (None: no ack before it)
    end: float | None  # first ok completion after the failures (None: never recovered)
    downtime_ms: int | None  # None = never recovered within the history
    failed_ops: int
    indeterminate_ops: int
    # when the first failed op of the run was sent (a gap: when it outgrew max_gap_s): which fault caused it
    onset: float | None = dataclasses.field(default=None, compare=False)

    @property
    def recovered(self) -> bool:
        return self.downtime_ms is not None


def no_outage(service: str) -> Outage:
    return Outage(service, None, None, 0, 0, 0)


def _candidate(
    service: str, start: float | None, end: float | None, since: float, bad: list[Op], onset: float | None
) -> Outage:
    # Without any ack before the failures the fault time `since` is the anchor of the measurement.
    anchor = start if start is not None else since
    downtime = None if end is None else round((end - anchor) * 1000)
    fails = sum(1 for o in bad if o.type == FAIL)
    return Outage(service, start, end, downtime, fails, sum(1 for o in bad if o.type == INFO), onset)


def severity(o: Outage) -> tuple[float, int]:
    return (math.inf if o.downtime_ms is None else o.downtime_ms, o.failed_ops + o.indeterminate_ops)


def _invoke_times(ops: list[Op]) -> dict[int, float]:
    """id(completion) -> when its process invoked it (a client has one op in flight at a time)."""
    pending: dict[str, float] = {}
    out: dict[int, float] = {}
    for o in ops:
        if o.type == INVOKE:
            pending[o.process] = o.time
        elif o.process in pending:
            out[id(o)] = pending.pop(o.process)
    return out


def _hung(ops: list[Op], after: float | None) -> bool:
    """True when some client's last op is an invoke later than `after` (a request that never came back)."""
    last: dict[str, Op] = {}
    for o in ops:
        last[o.process] = o
    return any(o.type == INVOKE and (after is None or o.time > after) for o in last.values())


def outage(
    history: History,
    service: str,
    since: float,
    until: float | None = None,
    fs: Iterable[str] = ("write", "publish", "connect"),
    max_gap_s: float | None = None,
    onset_within: tuple[float, float | None] | None = None,
    stall_s: float | None = None,
) -> Outage:
    """The longest of `outages(...)`; no outage at all reads as 0 ms."""
    found = outages(history, service, since, until, fs, max_gap_s, onset_within, stall_s)
    return max(found, key=severity) if found else no_outage(service)


def total_downtime_ms(found: list[Outage]) -> int | None:
    """What the clients lost in all: the sum of every outage's downtime (None when one never ended)."""
    if any(o.downtime_ms is None for o in found):
        return None
    return sum(o.downtime_ms or 0 for o in found)


def outages(
    history: History,
    service: str,
    since: float,
    until: float | None = None,
    fs: Iterable[str] = ("write", "publish", "connect"),
    max_gap_s: float | None = None,
    onset_within: tuple[float, float | None] | None = None,
    stall_s: float | None = None,
) -> list[Outage]:
    """Every outage of `service` whose failures (or gap) fall at or after `since`, in the order they began: a service
    that flaps three times has three.

    A run of `fail`/`info` completions with at least one at or after `since` is an outage. With
    `max_gap_s`, two successive acknowledged ops more than `max_gap_s` apart (the second at or after
    `since`) are one too, as is a request still pending at the end of the history (`until`, else
    the last op recorded) more than `max_gap_s` after the last ack: a frozen server hangs requests
    rather than failing them.
    With `onset_within=(a, b)`, only outages whose onset lies in [a, b) count: the outages one fault of several
    caused (a is its time, b the next fault's). With `stall_s`, an acknowledged op that took longer than `stall_s`
    (its completion minus its invoke) is an outage too, from the ack before it to its own: a VIP missing for half a
    second costs a SYN that TCP retransmits a second later, and the op succeeds late instead of failing.
    """
    fset = set(fs)
    ops = sorted(history.select(f=fset, service=service, until=until), key=lambda o: o.time)
    completions = [o for o in ops if o.type in (OK, FAIL, INFO)]
    candidates: list[Outage] = []
    prev_ok: float | None = None
    bad: list[Op] = []
    invoked = _invoke_times(ops)

    def sent(o: Op) -> float:
        # a failed op dates its outage from when it was sent: a request hung by the fault fails only at its timeout,
        # perhaps after a heal that came meanwhile, and is still the fault's
        return invoked.get(id(o), o.time)

    for o in completions:
        if o.type != OK:
            bad.append(o)
            continue
        recent = [b for b in bad if b.time >= since]
        gap = max_gap_s is not None and prev_ok is not None and o.time >= since and o.time - prev_ok > max_gap_s
        began = invoked.get(id(o))
        stall = stall_s is not None and began is not None and o.time >= since and o.time - began > stall_s
        if recent or gap or stall:
            # a gap has no failed op to date it: it became an outage once `max_gap_s` passed without an ack; a stall
            # began when its op was sent
            onset = sent(bad[0]) if recent else (prev_ok or since) + (max_gap_s or 0) if gap else began
            candidates.append(_candidate(service, prev_ok, o.time, since, recent, onset))
        prev_ok, bad = o.time, []
    recent = [b for b in bad if b.time >= since]
    if recent:
        candidates.append(_candidate(service, prev_ok, None, since, recent, sent(bad[0])))
    elif max_gap_s is not None:
        end_of_history = until if until is not None else max((o.time for o in history), default=since)
        anchor = prev_ok if prev_ok is not None else since
        if end_of_history - anchor > max_gap_s and end_of_history >= since and _hung(ops, prev_ok):
            candidates.append(_candidate(service, prev_ok, None, since, [], anchor + max_gap_s))
    if onset_within is not None:
        lo, hi = onset_within
        candidates = [c for c in candidates if c.onset is None or (c.onset >= lo and (hi is None or c.onset < hi))]
    return candidates


def downtime_check(outage: Outage, bound_ms: int | None) -> Check:
    """Fails when the service never recovered, or recovered later than `bound_ms` (None: no bound)."""
    name = f"downtime:{outage.service}"
    bound = "no bound" if bound_ms is None else f"bound {bound_ms} ms"
    ops = f"{outage.failed_ops} failed, {outage.indeterminate_ops} indeterminate ops"
    if outage.downtime_ms is None:
        since = "" if outage.start is None else f" since the last ack at {outage.start:.3f}"
        detail = f"no acknowledged op after the first failure{since} ({ops})"
        return Check(name, False, f"{outage.service}: never recovered: {detail}")
    how = MEASURED_BY
    if outage.start is None and outage.downtime_ms > 0:
        how = "from the fault (no acknowledged op before the first failure) to the first acknowledged op after"
    passed = bound_ms is None or outage.downtime_ms <= bound_ms
    detail = f"{outage.service}: {outage.downtime_ms} ms downtime ({bound}), measured {how}; {ops}"
    return Check(name, passed, detail)
