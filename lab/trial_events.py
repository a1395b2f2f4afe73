"""A trial's events and timing checks, per service: every outage in each fault's (and heal's) window is an event,
the first fault's longest carries its floor and limit (lab/floors.py), so does a heal's move back onto its node (a
failback), and the configured timeouts' bound limits what has no complete floor. Split from lab/trial.py, which
runs the trial; this reads what it recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lab.checks import availability
from lab.checks.availability import Outage, downtime_check, no_outage, outage, severity, total_downtime_ms
from lab.checks.base import Check
from lab.checks.floor import floor_check
from lab.checks.split_brain import vip_timeline
from lab.floors import Floor
from lab.history import WORK_FS, History
from lab.report import Event

if TYPE_CHECKING:
    from lab.trial import Trial


@dataclass
class Timing:
    outages: dict[str, Outage] = field(default_factory=dict)  # service -> its longest outage in the trial
    events: list[Event] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    floors: list[dict[str, Any]] = field(default_factory=list)  # how each floor was made (trials/<name>/floors.json)


def timing(
    t: Trial,
    h: History,
    since: float,
    placed: dict[str, str],
    bounds_ms: dict[str, int],
    *,
    expect_split_brain: bool,
    membership_change: bool,
) -> Timing:
    """Events and timing checks of every service the playbook runs, from the trial's history."""
    out = Timing()
    outages, events, checks, floors = out.outages, out.events, out.checks, out.floors
    limited: set[str] = set()  # services with an outage limited by its floor (a fault's or a failback's)
    unfloored: set[str] = set()  # services with a fault's outage no floor limited
    prefix = f"{t.name}: "
    pb, ctx = t.lab.playbook, t.lab.ctx
    resolution_s, stall_s = t.resolution_ms / 1000, t.cfg.stall_s
    how = {"max_gap_s": resolution_s, "stall_s": stall_s, "fs": WORK_FS}  # what floors.json's downtimes are from
    for svc in pb.services(ctx):
        # a gap longer than the history's resolution is an outage even when no op failed (hung requests)
        whole = availability.outages(h, svc, since=since, fs=WORK_FS, max_gap_s=resolution_s, stall_s=stall_s)
        o = outages[svc] = max(whole, key=severity) if whole else no_outage(svc)
        probe = outage(h, svc, since=since, fs=("connect",))
        for i, (label, target, at, nxt) in enumerate(t.windows(since, h.ops[-1].time)):
            # with several faults, each event holds the outages that began after it and before the next
            within = None if nxt is None and i == 0 else (at if i else h.ops[0].time, nxt)
            # one window (one fault, no heal): the whole trial's outages, not measured again
            found = whole if within is None else availability.outages(
                h, svc, since=at, fs=WORK_FS, max_gap_s=resolution_s, onset_within=within, stall_s=stall_s
            )  # fmt: skip
            o_i = max(found, key=severity) if found else no_outage(svc)
            if i and o_i.downtime_ms == 0:
                continue  # this fault cost this service nothing
            # the first fault's service came back where its move took it (a heal may move it back after)
            where = (t.placed_after_fault or placed) if i == 0 else placed
            ev = Event.from_outage(
                label, target, at, o_i, recovered_on=pb.recovered_on(ctx, svc, where), bound_ms=bounds_ms.get(svc)
            )
            # what the floor/limit check limits: every outage of this window together (flaps add up)
            ev.outages, ev.total_downtime_ms = max(1, len(found)), total_downtime_ms(found)
            ev.nth = next((n for n, x in enumerate(found, 1) if x is o_i), 1)
            back = label.startswith("heal:") and not expect_split_brain  # after a split, no one move
            fl = failback_floor(t, svc, label, target, at, placed, h) if back else None
            if fl is not None:  # the heal moved the service back (no stickiness, preemption): its floor limits it
                ev.floor_ms, ev.limit_ms = fl.total_ms, fl.limit_ms(t.resolution_ms)
                checks.append(floor_check(f"{prefix}{label}: ", ev, fl))
                limited |= {svc} if ev.limit_ms is not None else set()
                # re-measurable as a fault's (tests/unit/test_floors.py): its outages are the ones since the heal
                floors.append({**fl.to_dict(), **how, "since": at})
            elif label.startswith("heal:") and svc in bounds_ms:  # a heal's outage with no move to floor
                c = downtime_check(o_i, bounds_ms[svc])
                name = f"{prefix}{c.name} after {label} within {bounds_ms[svc]} ms"
                checks.append(Check(name, c.passed, c.detail + "; no move back to floor: the configured timeouts"))
            ev.probe_gap_ms = (
                probe if within is None else outage(h, svc, since=at, fs=("connect",), onset_within=within)
            ).downtime_ms
            ev.vip = pb.vip_of(ctx, svc)
            if ev.vip:
                timeline = vip_timeline(h, ev.vip)
                before = [nodes for t, nodes in timeline if t <= at]
                ev.vip_from = list(before[-1]) if before else None
                after = [nodes for t, nodes in timeline if nxt is None or t < nxt]
                ev.vip_to = list(after[-1]) if after else None
            # a floor is of a trial with one fault (its placement before and after: another fault may have moved
            # things again); a failback after its heal is not its move (the playbooks check the fault's target)
            if i == 0 and len(t.fault_log) == 1 and not expect_split_brain:  # a split-brain is no one move
                moved = t.placed_after_fault or placed
                fl = pb.floor(ctx, svc, t.groups_before, moved, membership_change, t.faults, h)
                if fl is not None:
                    ev.floor_ms, ev.limit_ms = fl.total_ms, fl.limit_ms(t.resolution_ms)
                    checks.append(floor_check(prefix, ev, fl))
                    limited |= {svc} if ev.limit_ms is not None else set()
                    floors.append({**fl.to_dict(), **how, "since": since})
            if not label.startswith("heal:") and o_i.downtime_ms != 0 and ev.limit_ms is None:
                unfloored.add(svc)
            events.append(ev)
            # the other outages of this window (a flap after the service came back) are events of their own
            for n, other in enumerate(found, 1):
                if other is not o_i:
                    flap = Event.from_outage(label, target, at, other, recovered_on=None, bound_ms=None)
                    flap.nth, flap.outages, flap.vip, flap.flap = n, len(found), ev.vip, True
                    events.append(flap)
        # the configured timeouts' bound limits what has no complete floor; else it is what Pacemaker would
        # tolerate, in the event only
        if svc in bounds_ms and (svc not in limited or svc in unfloored):
            c = downtime_check(o, bounds_ms[svc])
            checks.append(
                Check(
                    f"{prefix}{c.name} within {bounds_ms[svc]} ms",
                    c.passed,
                    f"{c.detail}; VIP TCP probe gap {probe.downtime_ms} ms; bound from configured timeouts",
                )
            )
    return out


def failback_floor(
    t: Trial, svc: str, label: str, target: str, at: float, placed: dict[str, str], h: History
) -> Floor | None:
    """The floor of what a heal moved back onto its node: from where the fault's move had put things to where the
    trial ended, for a trial with one fault and one heal (more, and the move is no one heal's)."""
    if len(t.fault_log) != 1 or len(t.heal_log) != 1 or t.placed_after_fault is None:
        return None
    pb, ctx = t.lab.playbook, t.lab.ctx
    return pb.floor(ctx, svc, t.placed_after_fault, placed, False, [(label, target, at)], h)
