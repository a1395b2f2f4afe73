"""Pacemaker groups as the harness waits for them: every group whole on one node, no transition pending. Shared by
the playbooks that run groups under Pacemaker (active_passive: ch. 3; quorum: ch. 2's full-size cluster)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import cast

from lab import bounds
from lab.checks.placement import group_nodes, resource_nodes
from lab.wait import WaitTimeout, until
from provision import pacemaker
from provision.context import Context

# The guide's start timeouts (IPaddr2 20 s default, Filesystem 60 s, mysql 120 s; rabbitmq-server 20 s default):
# the ceiling while the CIB cannot be read yet (before `crm configure`).
GUIDE_START_S = 20 + 60 + 120


def start_deadline_s(ctx: Context, want: Collection[str]) -> float:
    """Worst case for the groups to run again: a membership change, then the slowest group stopped and started
    again with the timeouts configured in the CIB (groups move independently)."""
    cib = ctx.ask("cibadmin -Q --scope resources")
    if not cib or not want:
        return GUIDE_START_S * pacemaker.timeout_scale(ctx) + bounds.membership_ms(ctx.opts) / 1000
    return max(bounds.failover_bound_ms(ctx.opts, cib, g, stop_first=True) for g in want) / 1000


def wait_settled(
    ctx: Context,
    node: str,
    want: Collection[str],
    *,
    timeout: float | None = None,
    avoid: str | None = None,
    also: Callable[[str], bool] | None = None,
    also_what: str = "",
) -> dict[str, str]:
    """Wait until every group runs, whole, on one node (not `avoid`, and one the provider has running: right after a
    crash the survivors' crm_mon still places the groups on the dead node until corosync notices), and
    `also(crm_mon xml)` holds where given; return group -> node."""

    def settled() -> dict[str, str] | None:
        xml = pacemaker.crm_mon_xml(ctx, node)
        if not xml:
            return None
        placed = group_nodes(xml)
        if all(g in placed and placed[g] is not None and placed[g] != avoid for g in want) and (
            all(ctx.provider.is_running(cast(str, placed[g])) for g in want) and (also is None or also(xml))
        ):
            return {g: cast(str, placed[g]) for g in want}  # not None: checked just above
        return None

    return until(
        settled,
        timeout=timeout or start_deadline_s(ctx, want),
        interval=0.1,
        what=f"groups {sorted(want)} to run whole on one node each"
        + (f", not on {avoid}" if avoid else "")
        + (f", {also_what}" if also_what else ""),
        seen=lambda: resource_nodes(pacemaker.crm_mon_xml(ctx, node) or "<x/>"),
    )


def settle(
    ctx: Context,
    want: Collection[str],
    *,
    on: str | None = None,
    avoid: str | None = None,
    timeout: float | None = None,
    also: Callable[[str], bool] | None = None,
    also_what: str = "",
) -> dict[str, str]:
    """Wait until every group runs whole on one node and no transition is pending; group -> node."""
    node = on or next(n for n in ctx.cluster_nodes if n != avoid and ctx.provider.is_running(n))
    deadline = timeout or start_deadline_s(ctx, want)

    def whole() -> dict[str, str]:
        return wait_settled(ctx, node, want, avoid=avoid, timeout=deadline, also=also, also_what=also_what)

    whole()
    # ...and no transition still pending (a rejoined node may pull a group back right after).
    r = ctx.provider.run(node, f"crm_resource --wait --timeout={int(deadline)}s", timeout=deadline + 10)
    if not r.ok:  # a wait that gave up, as until's: a schedule run judges what was recorded (lab/play.py)
        raise WaitTimeout(f"cluster did not settle within {deadline:.0f}s: {r.stderr.strip()}; {pending(ctx, node)}")
    return whole()


def pending(ctx: Context, node: str) -> str:
    """What keeps the cluster from settling, as `node` sees it: the transition the scheduler would still run, and
    the failed actions (a resource failing again and again never settles)."""
    plan = ctx.provider.run(node, "crm_simulate -L", timeout=60)
    summary = plan.stdout.split("Transition Summary:", 1)[-1].strip() if plan.ok else plan.stderr.strip()
    mon = ctx.provider.run(node, "crm_mon -1 -f", timeout=60)
    _, _, failed = mon.stdout.partition("Failed Resource Actions:")
    todo = " | ".join(summary.splitlines()[:12]) or "nothing"
    return f"still to do: {todo}; failed actions: {' | '.join(failed.strip().splitlines()[:8]) or 'none'}"
