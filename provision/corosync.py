"""Role pacemaker, part 1: corosync 3 with knet, one link per scenario network (the guide's rings)."""

from __future__ import annotations

from dataclasses import dataclass

from provision.context import Context, render


@dataclass(frozen=True)
class RingNode:
    name: str
    ring_addrs: list[str]


def links(ctx: Context) -> list[str]:
    """The networks every cluster node has an address on: the management network first (ring0, as in the guide),
    then the others in scenario order (ring1: replication)."""
    nodes = [ctx.scenario.nodes[n] for n in ctx.cluster_nodes]
    shared = [net for net in ctx.scenario.networks if all(net in n.addresses for n in nodes)]
    return sorted(shared, key=lambda net: ctx.scenario.networks[net].purpose != "management")


def config(ctx: Context) -> str:
    nets = links(ctx)
    nodes = [RingNode(n, [str(ctx.scenario.nodes[n].addresses[net]) for net in nets]) for n in ctx.cluster_nodes]
    return render(
        "corosync.conf.j2",
        scenario=ctx.scenario.name,
        profile=ctx.profile,
        cluster_name=f"halab-{ctx.scenario.name}"[:32],
        opts=ctx.opts,
        links=nets,
        nodes=nodes,
    )


def install(ctx: Context, node: str) -> None:
    ctx.provider.put(node, "/etc/corosync/corosync.conf", config(ctx))
    if ctx.opts.secauth:
        ctx.provider.put(node, "/etc/corosync/authkey", ctx.secrets.corosync_authkey, mode=0o400)
    else:
        ctx.provider.run(node, "rm -f /etc/corosync/authkey", check=True)
