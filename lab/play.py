"""Play a fault schedule (lab/schedule.py) as one trial: the scenario's workloads and the observer run while
each step applies, waits, sleeps or heals; then the trial's checks, and a report whose events name the fault
that caused them (`halab run`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from lab.faults import Fault
from lab.schedule import Action, Apply, Heal, Schedule, Sleep, Wait, describe
from lab.trial import WORK_FS, Trial
from lab.wait import WaitTimeout, until

if TYPE_CHECKING:
    from lab.session import Lab

# Faults after which the cluster's membership changes (the floor includes corosync's token + consensus).
MEMBERSHIP = ("crash", "poweroff", "reset", "freeze", "partition")


def run(lab: Lab, schedule: Schedule, actions: list[Action], *, echo: Callable[[str], None] = print) -> str:
    """Bring the lab up (or reuse it), provision it (unless it already is, under this profile), play the
    schedule, and return the verdict; the report and the summary table are written and echoed."""
    from lab import registry

    echo(f"provider: {lab.provider_name} ({lab.provider_reason}); seed {lab.seed}")
    entry = registry.load(lab.scenario.name, lab.provider_name)
    if not lab.provider.is_up():
        lab.up()
        entry = None
    if entry is None or not entry.provisioned or entry.profile != lab.profile:
        lab.provision()
    lab.report.notes.append(f"schedule {schedule.path} ({schedule.description}), seed {lab.seed}")
    name = f"schedule-{schedule.path.stem}"
    # No fault may keep a service away longer than the configured timeouts let the system take to recover.
    bound_ms = int(lab.playbook.recovery_deadline_s(lab.ctx) * 1000)
    with lab.trial(name) as t:
        bounds_ms = dict.fromkeys(lab.playbook.services(lab.ctx), bound_ms)
        try:
            play(t, actions, echo=echo)
            t.finish(bounds_ms=bounds_ms, membership_change=any(f.name in MEMBERSHIP for f, _ in t.fault_log))
        except WaitTimeout as exc:  # the system never came back: a failed run with its report, not bad input
            echo(f"not recovered: {exc}")
            t.finish_unrecovered(str(exc), bounds_ms=bounds_ms,
                                 membership_change=any(f.name in MEMBERSHIP for f, _ in t.fault_log))  # fmt: skip
    path = lab.write_report()
    echo(lab.report.summary_table())
    for c in lab.report.checks:
        if not c.passed:
            echo(f"FAIL {c.name}: {c.detail}")
    echo(f"report: {path}")
    return lab.report.verdict


def play(t: Trial, actions: list[Action], *, echo: Callable[[str], None] = print) -> None:
    """Each action in order; what is still applied at the end is healed, newest first."""
    applied: dict[str, Fault] = {}
    lags_ms: list[int] = []  # the player's own cost before each fault: selector resolution and recording
    t0 = time.monotonic()
    for action, line in zip(actions, describe(actions), strict=True):
        echo(f"[{time.monotonic() - t0:7.1f}s] {line}")
        if isinstance(action, Sleep):
            time.sleep(action.seconds)  # the schedule's own spacing between faults, not a wait for a condition
        elif isinstance(action, Wait):
            wait(t, action)
        elif isinstance(action, Apply):
            asked = time.time()
            at = t.fault(action.fault)
            lags_ms.append(round((at - asked) * 1000))
            f = t.applied[-1]
            echo(f"{'':11}-> {f.describe()}")
            if action.duration_s is None:
                applied[action.ref] = f
            else:
                time.sleep(action.duration_s)  # the fault's scheduled length
                t.heal(f)
        elif isinstance(action, Heal):
            refs = list(reversed(applied)) if action.ref == "all" else [action.ref]
            for ref in refs:
                scheduled = applied.pop(ref, None)
                if scheduled is not None and scheduled in t.applied:
                    t.heal(scheduled)
    for f in reversed(list(t.applied)):
        echo(f"{'':11}heal at the end: {f.describe()}")
        t.heal(f)
    if lags_ms:
        t.lab.report.timings_s["schedule:lag-before-faults"] = round(sum(lags_ms) / 1000, 3)
        t.lab.report.notes.append(
            f"schedule overhead: from each step's start to its fault's record (selectors resolved), max "
            f"{max(lags_ms)} ms, {sum(lags_ms)} ms over {len(lags_ms)} faults; waits poll every 50 ms"
        )


def wait(t: Trial, action: Wait) -> None:
    lab = t.lab
    deadline = action.timeout_s or lab.playbook.recovery_deadline_s(lab.ctx)
    if action.condition == "settled":
        lab.settle(timeout=deadline)
    elif action.condition == "quorate":
        nodes = lab.cluster_nodes
        until(
            lambda: any(
                lab.provider.is_running(n) and lab.provider.run(n, "corosync-quorumtool -s").rc == 0 for n in nodes
            ),
            timeout=deadline,
            what="a quorate cluster node (corosync-quorumtool -s exits 0)",
            seen=lambda: lab.ask("corosync-quorumtool -s") or "no node answers",
        )
    elif action.condition == "up":
        since = time.time()
        until(
            lambda: t.runner_alive() and t.history().select(service=action.arg, type="ok", f=WORK_FS, since=since),
            timeout=deadline,
            what=f"an acknowledged {action.arg} op",
            seen=lambda: (t.dir / "workload.log").read_text()[-500:],
        )
    else:
        raise ValueError(f"unknown wait condition {action.condition!r}")
