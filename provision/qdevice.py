"""Roles qnetd and the qdevice half of pacemaker (corosync-qnetd(8), corosync-qdevice(8)): a third vote for a
two-node cluster from an arbiter outside it. Without TLS: the lab's network is its own, and TLS would need an NSS
database per node with certificates signed by the arbiter (corosync-qdevice-net-certutil)."""

from __future__ import annotations

from lab.wait import until
from provision import pacemaker
from provision.context import Context

QNETD_LOG = "/var/log/corosync/qnetd.out"
QDEVICE_LOG = "/var/log/corosync/qdevice.out"
QNETD_STATUS = "corosync-qnetd-tool -l -v"  # every client, its cluster, its vote (ACK/NACK) and why
QDEVICE_STATUS = "corosync-qdevice-tool -s -v"


def host(ctx: Context) -> str | None:
    dev = ctx.opts.qdevice
    return dev.host if dev is not None else None


def start_qnetd(ctx: Context) -> None:
    node = host(ctx)
    if node is None:
        return
    # -f: foreground under the provider's supervision; -s off: no TLS (the scenario says tls: off)
    ctx.provider.run(node, "mkdir -p /var/log/corosync /run/corosync-qnetd", check=True, timeout=15)
    ctx.provider.start_daemon(node, "corosync-qnetd -f -s off", QNETD_LOG)


def start_qdevice(ctx: Context, node: str) -> None:
    """After corosync on a cluster node: the device reads quorum.device from corosync's cmap."""
    if host(ctx) is None:
        return
    # it exits at once ("Failed to initialize the cmap API") when corosync does not answer yet
    until(
        lambda: ctx.provider.run(node, "corosync-cmapctl -g totem.cluster_name", timeout=15).ok,
        timeout=pacemaker.stack_deadline_s(ctx),
        what=f"corosync's cmap to answer on {node} (before corosync-qdevice starts)",
        interval=0.2,
    )
    ctx.provider.run(node, "mkdir -p /run/corosync-qdevice", check=True, timeout=15)
    ctx.provider.start_daemon(node, "corosync-qdevice -f", QDEVICE_LOG)
