"""Role pacemaker, part 2: start corosync + pacemakerd, load the guide's crm configuration,
and read the cluster's state back (crm_mon XML)."""

from __future__ import annotations

import re
import time

from lab.checks.placement import online_nodes
from lab.wait import until
from provision import corosync
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


def crm_mon_xml(ctx: Context, node: str) -> str | None:
    r = ctx.provider.run(node, "crm_mon -1 --output-as=xml", timeout=15)
    return r.stdout if r.ok else None


def stack_deadline_s(ctx: Context) -> float:
    # pacemaker's first election waits for dc-deadtime (seeded below, 20 s if unseeded);
    # knet needs a few tokens to bring links up. Bounded by those, not by a guess at speed.
    return (2 * dc_deadtime_ms(ctx) + 10 * ctx.opts.token_ms + ctx.opts.consensus_ms) / 1000.0


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

    # The timers bound the election; the daemons' own start is the machine's: under TCG pacemaker's daemons take
    # ten times longer to start and join. A node rejoining later may take what this lab's first start took, thrice.
    deadline = max(stack_deadline_s(ctx), 3 * ctx.measured.get("stack_online_s", 0.0))
    t0 = time.monotonic()
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
