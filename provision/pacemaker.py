"""Role pacemaker, part 2: start corosync + pacemakerd, load the guide's crm configuration,
and read the cluster's state back (crm_mon XML)."""

from __future__ import annotations

import re
import time

from lab import progress
from lab.bounds import token_timeout_ms
from lab.checks.placement import online_nodes
from lab.checks.quorum_parse import QuorumParseError, parse_quorumtool
from lab.observer import QUORUM_CMD
from lab.wait import until
from provision import corosync, fencing
from provision.context import Context, render

CRM_FILE = "/var/lib/pacemaker/halab.crm"
CIB = "/var/lib/pacemaker/cib/cib.xml"
LOG = "/var/log/pacemaker/pacemaker.log"  # Debian pacemaker's default PCMK_logfile
# Under TCG a guest runs ~10x slower. Measured here with the guide's timeouts: mysqld took 60 s to start, and
# during a failover a p_mysql monitor (10 s) and a p_drbd_mysql monitor (Pacemaker's default 20 s) timed out on
# a healthy node, so the cluster recovered resources that had not failed. On an emulated CPU every op timeout is
# this many times the guide's (those the CIB sets, and the default for the rest), so that a slow CPU does not read
# as a failed resource; the bounds the lab derives from the CIB follow (lab/bounds.py reads it back).
EMULATED_TIMEOUT_SCALE = 6
DEFAULT_OP_TIMEOUT_S = 20  # Pacemaker's, for an op that sets none
# How long pacemakerd may take to bring its daemons up (its state "running"), on a native CPU (x the scale above
# on an emulated one). No timer bounds that: it is the machine's. Measured here: 1.4 s, seven nodes at once; a CI
# run's seven-node start missed a deadline made of the timers alone (21.6 s), still without a DC.
DAEMONS_START_S = 60


def dc_deadtime_ms(ctx: Context) -> int:
    """Long enough for knet links and a membership to form (a few tokens plus consensus). A start forms its
    membership from join messages: the configured token, not the timeout a larger nodelist adds for losses."""
    return 4 * ctx.opts.token_ms + ctx.opts.consensus_ms


def start_stack(ctx: Context, node: str) -> None:
    corosync.install(ctx, node)
    # Seed an empty CIB holding only dc-deadtime, never over one that exists: a node rejoining after a crash keeps
    # its CIB on disk (as a real node would), and the DC's newer CIB wins anyway.
    if not ctx.provider.run(node, f"test -e {CIB}", timeout=10).ok:
        ctx.provider.put(
            node,
            CIB,
            render("cib-seed.xml.j2", dc_deadtime_ms=dc_deadtime_ms(ctx)),
            mode=0o600,
            owner="hacluster:haclient",
        )
    ctx.provider.start_daemon(node, "corosync -f", "/var/log/corosync/corosync.out")
    ctx.provider.start_daemon(node, "pacemakerd", "/var/log/pacemaker/pacemakerd.out")


def stack_up(ctx: Context) -> list[str]:
    """corosync + pacemaker on every node of the context's cluster, all online; returns the crm every cluster's
    configuration begins with: its properties, then its fencing when the profile fences."""
    nodes = ctx.cluster_nodes
    progress.note(f"corosync + pacemaker on {', '.join(nodes)}")
    for n in nodes:
        start_stack(ctx, n)
    wait_online(ctx, nodes[0], nodes)
    crm = [properties(ctx)]
    if fencing.enabled(ctx):
        for n in nodes:
            fencing.install(ctx, n)
        crm.append(fencing.crm(ctx))
    return crm


def crm_mon_xml(ctx: Context, node: str) -> str | None:
    r = ctx.provider.run(node, "crm_mon -1 --output-as=xml", timeout=15)
    return r.stdout if r.ok else None


def stack_deadline_s(ctx: Context) -> float:
    # pacemaker's first election waits for dc-deadtime (seeded below, 20 s if unseeded);
    # knet needs a few tokens to bring links up. Bounded by those, not by a guess at speed; on an emulated CPU the
    # daemons' own work (the joins, the CIB's sync) is as slow as their ops, so it scales as their timeouts do
    # (measured under TCG: two nodes rejoining after a partition were not both online in crm_mon after 28.2 s).
    # The token is the one corosync runs with (token_coefficient past two nodes): six of the guide's seven nodes
    # started at once formed their membership after 45 s here, with the configured token's deadline at 21.6 s.
    timers_ms = 2 * dc_deadtime_ms(ctx) + 10 * token_timeout_ms(ctx.opts) + ctx.opts.consensus_ms
    return timers_ms * timeout_scale(ctx) / 1000.0


def membership_deadline_s(ctx: Context) -> float:
    """knet's links up and a membership formed: ten of the token timeouts corosync runs with, plus consensus; on an
    emulated CPU scaled as the stack's deadline is (the peer's corosync may still be starting: measured under TCG,
    node1 alone after the 11.2 s of the guide's timers)."""
    return (10 * token_timeout_ms(ctx.opts) + ctx.opts.consensus_ms) * timeout_scale(ctx) / 1000.0


def corosync_members(ctx: Context, node: str) -> list[str] | str | None:
    """The members `corosync-quorumtool -s` lists on `node` (names), or what it said instead."""
    r = ctx.provider.run(node, QUORUM_CMD, timeout=15)
    try:
        return list(parse_quorumtool(r.stdout)["members"])
    except QuorumParseError:
        return (r.stdout + r.stderr).strip()[-300:] or None


def members_are(seen: list[str] | str | None, expect: list[str]) -> bool:
    return isinstance(seen, list) and sorted(seen) == sorted(expect)


def daemons_running(xml: str | None) -> bool:
    """crm_mon's <pacemakerd state="running">: pacemakerd has started every daemon of its own."""
    return bool(xml and re.search(r'<pacemakerd\b[^>]*\bstate="running"', xml))


def wait_online(ctx: Context, node: str, expect: list[str]) -> str:
    def online() -> str | None:
        xml = crm_mon_xml(ctx, node)
        return (
            xml
            if xml
            and sorted(online_nodes(xml)) == sorted(expect)
            and "<current_dc " in xml
            and 'with_quorum="true"' in xml
            else None
        )

    t0 = time.monotonic()
    # In three steps, each with its own bound, so that a slow machine's daemons are not charged to the timers: the
    # daemons' own start (the machine's speed, bounded by DAEMONS_START_S); corosync's membership of `expect` (the
    # links and the token bound it); the election and the joins (dc-deadtime bounds them). A node rejoining later
    # may take what this lab's first start took, thrice.
    until(
        lambda: daemons_running(crm_mon_xml(ctx, node)),
        timeout=DAEMONS_START_S * timeout_scale(ctx),
        what=f"pacemakerd on {node} to report its daemons running",
        seen=lambda: crm_mon_xml(ctx, node),
        interval=0.2,
    )
    ctx.measured["daemons_start_s"] = max(ctx.measured.get("daemons_start_s", 0.0), time.monotonic() - t0)
    progress.note(f"pacemaker's daemons running on {node}: corosync's membership of {', '.join(expect)}")
    until(
        lambda: members_are(corosync_members(ctx, node), expect),
        timeout=membership_deadline_s(ctx),
        what=f"corosync on {node} to list {expect} as members",
        seen=lambda: corosync_members(ctx, node),
        interval=0.2,
    )
    progress.note(f"corosync's membership formed on {node}: the DC's election and the joins")
    deadline = max(stack_deadline_s(ctx), 3 * ctx.measured.get("stack_online_s", 0.0))
    xml = until(
        online,
        timeout=deadline,
        interval=0.2,
        what=f"crm_mon on {node} to show {expect} online with a DC and quorum",
        seen=lambda: crm_mon_xml(ctx, node),
    )
    ctx.measured["stack_online_s"] = max(ctx.measured.get("stack_online_s", 0.0), time.monotonic() - t0)
    return xml


def timeout_scale(ctx: Context) -> int:
    return EMULATED_TIMEOUT_SCALE if ctx.provider.emulated else 1


def emulated_s(ctx: Context, seconds: float) -> float:
    """A provisioning command's timeout, as many times longer on an emulated CPU as Pacemaker's op timeouts are: under
    TCG three service registrations at once on an API node took over 120 s while Keystone answered them."""
    return seconds * timeout_scale(ctx)


def timeout_note(ctx: Context) -> list[str]:
    scale = timeout_scale(ctx)
    if scale == 1:
        return []
    return [
        f"{ctx.provider.name}: emulated CPU: every Pacemaker op timeout is {scale}x the guide's (and ops that set "
        f"none get {DEFAULT_OP_TIMEOUT_S * scale} s): with the guide's, healthy resources' monitors timed out "
        "(provision/pacemaker.py)"
    ]


def scaled_timeouts(crm: str, scale: int) -> str:
    """Every op's `timeout="<N>s"` times `scale`, and an op_defaults timeout for the ops that set none (a resource
    agent's own parameters named timeout carry no unit here and are left as they are)."""
    if scale == 1:
        return crm
    out = re.sub(r'\btimeout="(\d+)s"', lambda m: f'timeout="{int(m[1]) * scale}s"', crm)
    return f"{out}\nop_defaults timeout={DEFAULT_OP_TIMEOUT_S * scale}s\n"


def configure(ctx: Context, node: str, crm: str) -> None:
    """`crm configure load update`: the guide pastes into `crm configure`; a file is the same text (its op
    timeouts scaled on an emulated CPU: EMULATED_TIMEOUT_SCALE)."""
    crm = scaled_timeouts(crm, timeout_scale(ctx))
    ctx.provider.put(node, CRM_FILE, crm)
    ctx.provider.run(node, f"crm configure load update {CRM_FILE}", check=True, timeout=120)


def properties(ctx: Context) -> str:
    from provision import fencing

    return render("cluster-properties.crm.j2", opts=ctx.opts, stonith=fencing.enabled(ctx))


def connectivity(ctx: Context, groups: list[str]) -> str:
    """hardened profile: ocf:pacemaker:ping against the management network's gateway."""
    nets = ctx.scenario.networks
    mgmt = next((n for n in nets.values() if n.purpose == "management" and n.gateway), None) or next(
        n for n in nets.values() if n.gateway is not None
    )
    interval = max(1, round(ctx.opts.token_ms / 1000))
    return render("connectivity.crm.j2", gateway=mgmt.gateway, groups=groups, interval_s=interval, dampen_s=interval)
