"""A backlog that must survive (issue 10): before a trial's first fault the AMQP consumer pauses and confirmed
messages pile up behind it, so the queue holds them through the fault and recovery; the drain after the run (or the
consumer, where a test lifts the pause) must find every one. An empty queue at the fault would pass any broker that
came back empty."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from lab import progress
from lab.checks.durability import unconsumed
from lab.history import INFO
from lab.wait import until

if TYPE_CHECKING:
    from lab.trial import Trial


def hold_backlog(t: Trial) -> int:
    """Pause the consumer (the flag file it watches) and wait, bounded by the config's timers, for `cfg.backlog`
    confirmed messages queued behind it; returns that number. The wait's cost goes in the report's timings."""
    cfg = t.cfg
    assert cfg.amqp is not None
    svc, log, t0 = cfg.amqp.service, t.dir / "workload.log", time.monotonic()
    cfg.pause_flag.touch()
    progress.note(f"pausing the AMQP consumer until {cfg.backlog} confirmed messages are queued")
    until(
        lambda: t.runner_alive() and t.history().select(f="pause", type=INFO, service=svc),
        timeout=cfg.pause_s,
        what="the AMQP consumer to pause",
        seen=lambda: log.read_text()[-800:],
    )
    until(
        lambda: t.runner_alive() and len(unconsumed(t.history(), svc)) >= cfg.backlog,
        timeout=cfg.backlog_s,
        what=f"{cfg.backlog} confirmed messages queued behind the paused consumer",
        seen=lambda: f"{len(unconsumed(t.history(), svc))} queued; {log.read_text()[-800:]}",
    )
    # what holding the backlog cost (a schedule's lag before its first fault includes it)
    t.lab.report.timings_s[f"backlog:{t.name}"] = round(time.monotonic() - t0, 2)
    return cfg.backlog
