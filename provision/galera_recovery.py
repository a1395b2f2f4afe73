"""Role galera, starting mariadbd from a saved position: grastate.dat and `mariadbd --wsrep-recover` read back
into a Position, the choice of the node to bootstrap from after a full crash, a single node's restart
(start_node: IST from where it stopped) and the whole cluster's recovery (recover_all).

Separate from the first bootstrap of a new cluster (provision/galera.py): this is what a lab runs after a crash.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from provision.context import Context
from provision.galera_config import (
    GRASTATE,
    LOG,
    MARIADBD,
    START_S,
    ZERO_UUID,
    GaleraError,
    departure_bound_s,
    galera_nodes,
    join_deadline_s,
)
from provision.galera_status import is_member, mariadbd_running, status, summary, wait_all, wait_member

# ----------------------------------------------------------------------------------------------- pure: parsing


@dataclass(frozen=True)
class GraState:
    """/var/lib/mysql/grastate.dat: where galera saved its position (seqno -1 while running or after a crash)."""

    uuid: str
    seqno: int
    safe_to_bootstrap: bool


def parse_grastate(text: str) -> GraState:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and not key.lstrip().startswith("#"):
            fields[key.strip()] = value.strip()
    try:
        return GraState(
            uuid=fields["uuid"],
            seqno=int(fields["seqno"]),
            # galera < 3.19 wrote no safe_to_bootstrap: it did not guard bootstraps, so it counts as safe
            safe_to_bootstrap=fields.get("safe_to_bootstrap", "1") == "1",
        )
    except (KeyError, ValueError) as exc:
        raise ValueError(f"not a grastate.dat (missing or bad {exc}): {text[:200]!r}") from None


_RECOVERED = re.compile(r"WSREP: Recovered position:\s+([0-9a-f]{8}-[0-9a-f-]{27}):(-?\d+)")


def parse_recovered_position(text: str) -> tuple[str, int] | None:
    """The last `WSREP: Recovered position: <uuid>:<seqno>` line `mariadbd --wsrep-recover` logged, if any."""
    found = _RECOVERED.findall(text)
    if not found:
        return None
    uuid, seqno = found[-1]
    return uuid, int(seqno)


# ----------------------------------------------------------------------------------------------- pure: choosing


@dataclass(frozen=True)
class Position:
    """One node's last committed position after a full crash. seqno -1: unknown."""

    node: str
    uuid: str
    seqno: int
    safe_to_bootstrap: bool = False
    source: str = "grastate"  # grastate | wsrep-recover | missing

    def __str__(self) -> str:
        flag = " safe_to_bootstrap" if self.safe_to_bootstrap else ""
        return f"{self.node} {self.uuid}:{self.seqno} ({self.source}{flag})"


@dataclass(frozen=True)
class Choice:
    node: str
    reason: str
    positions: tuple[Position, ...] = ()
    timings_s: dict[str, float] = field(default_factory=dict, compare=False)


def choose_bootstrap_node(positions: Sequence[Position]) -> Choice:
    """The node to bootstrap the cluster from after every node stopped: the one with the highest seqno, since any
    other would throw away the transactions only the most advanced one committed (they would get an SST of the
    older state). Ties: safe_to_bootstrap first (galera sets it on the last node to leave cleanly), then the
    order given (scenario order, so the choice is reproducible). Refuses when positions are unknown everywhere or
    the nodes have different histories (cluster UUIDs): that needs a human."""
    candidates = [p for p in positions if p.seqno >= 0 and p.uuid and p.uuid != ZERO_UUID]
    table = "; ".join(str(p) for p in positions)
    if not candidates:
        raise GaleraError(f"no node knows its position, cannot choose one to bootstrap from: {table}")
    uuids = sorted({p.uuid for p in candidates})
    if len(uuids) > 1:
        raise GaleraError(f"nodes disagree on the cluster's history ({', '.join(uuids)}); choose by hand: {table}")
    order = {p.node: i for i, p in enumerate(positions)}
    best = max(candidates, key=lambda p: (p.seqno, p.safe_to_bootstrap, -order[p.node]))
    others = [p for p in positions if p.node != best.node]
    why = f"highest seqno {best.seqno}"
    tied = [p.node for p in others if p.seqno == best.seqno]
    if tied:
        why += f", tied with {', '.join(tied)}, " + (
            "and it has safe_to_bootstrap: 1" if best.safe_to_bootstrap else "first in scenario order"
        )
    elif best.safe_to_bootstrap:
        why += ", safe_to_bootstrap: 1"
    unknown = [p.node for p in others if p not in candidates]
    if unknown:
        why += f"; position unknown on {', '.join(unknown)}"
    behind = [p for p in others if p in candidates and p.seqno < best.seqno]
    if behind:
        why += "; behind: " + ", ".join(f"{p.node} {p.seqno}" for p in behind)
    return Choice(node=best.node, reason=f"{best.node}: {why}", positions=tuple(positions))


# ----------------------------------------------------------------------------------------------- daemons


def _start(ctx: Context, node: str, *, new_cluster: bool, position: Position | None = None) -> None:
    if mariadbd_running(ctx, node):
        raise GaleraError(f"{node}: mariadbd is already running ({summary(status(ctx, node))})")
    cmd = MARIADBD
    if position is not None and position.source == "wsrep-recover" and position.seqno >= 0:
        # What mysqld_safe / Debian's galera_recovery pass after a crash: without it mariadbd starts from
        # 00000000-...:-1, a joiner then needs a full SST, and a bootstrapped node starts a new history (new UUID).
        cmd += f" --wsrep-start-position={position.uuid}:{position.seqno}"
    if new_cluster:
        # On this process's command line only: a later restart of the node (start_node) joins, which is why the
        # guide restarts node 1 once the others are up; not needed here.
        cmd += " --wsrep-new-cluster"
    ctx.provider.start_daemon(node, cmd, LOG)


def start_node(ctx: Context, node: str, position: Position | None = None) -> dict[str, str]:
    """Start one node's mariadbd again, joining the running cluster, from its own position (read_position, unless
    given): a node that missed what the donor's gcache still holds gets IST, else SST. Returns its status once
    Synced."""
    _start(ctx, node, new_cluster=False, position=position or read_position(ctx, node))
    return wait_member(ctx, node, timeout=join_deadline_s(ctx.opts))


def read_position(ctx: Context, node: str) -> Position:
    """grastate.dat, and where it says seqno -1 (a crash), `mariadbd --wsrep-recover` (InnoDB's last committed
    position; the server exits after logging it)."""
    r = ctx.provider.run(node, f"cat {GRASTATE}", timeout=10)
    gs = parse_grastate(r.stdout) if r.ok else None
    if gs is not None and gs.seqno >= 0:
        return Position(node, gs.uuid, gs.seqno, gs.safe_to_bootstrap, "grastate")
    rec = ctx.provider.run(node, f"{MARIADBD} --wsrep-recover --disable-log-error 2>&1", timeout=START_S)
    found = parse_recovered_position(rec.stdout)
    if found is None:
        return Position(node, gs.uuid if gs else ZERO_UUID, -1, bool(gs and gs.safe_to_bootstrap), "missing")
    uuid, seqno = found
    return Position(node, uuid, seqno, bool(gs and gs.safe_to_bootstrap), "wsrep-recover")


def recover_all(ctx: Context) -> Choice:
    """After every galera node stopped (crashed, then restarted as machines: provider.restart): find the most
    advanced node, bootstrap the cluster from it and start the others. If some node still runs a primary
    component, nothing is bootstrapped: the others join it."""
    t0 = time.monotonic()
    nodes = [n for n in galera_nodes(ctx) if ctx.provider.is_running(n)]
    if not nodes:
        raise GaleraError("no galera node is running: restart the nodes (provider.restart) first")
    live = [n for n in nodes if is_member(status(ctx, n))]
    if live:
        for n in nodes:
            if not mariadbd_running(ctx, n):
                start_node(ctx, n)
        return Choice(live[0], f"{live[0]} still runs a primary component: the others joined it, no bootstrap")
    busy = [n for n in nodes if mariadbd_running(ctx, n)]
    if busy:
        raise GaleraError(
            f"mariadbd runs without a primary component on {', '.join(busy)} "
            f"({'; '.join(summary(status(ctx, n)) for n in busy)}): stop it before recovering"
        )
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:  # each --wsrep-recover runs InnoDB crash recovery
        positions = list(pool.map(lambda n: read_position(ctx, n), nodes))
    t = {"positions": time.monotonic() - t0}
    choice = choose_bootstrap_node(positions)
    chosen = next(p for p in positions if p.node == choice.node)
    if not chosen.safe_to_bootstrap:
        # galera refuses --wsrep-new-cluster on a node not known to have left last; we have checked it by seqno
        ctx.provider.run(
            choice.node, f"sed -i 's/^safe_to_bootstrap:.*/safe_to_bootstrap: 1/' {GRASTATE}", check=True, timeout=10
        )
    t1 = time.monotonic()
    _start(ctx, choice.node, new_cluster=True, position=chosen)
    wait_member(ctx, choice.node, size=1, timeout=START_S)
    t["bootstrap"] = time.monotonic() - t1
    for pos in positions:
        if pos.node != choice.node:
            t2 = time.monotonic()
            start_node(ctx, pos.node, pos)
            t[f"join_{pos.node}"] = time.monotonic() - t2
    wait_all(ctx, nodes, timeout=departure_bound_s(ctx.opts) + 10)
    t["total"] = time.monotonic() - t0
    return Choice(choice.node, choice.reason, choice.positions, t)
