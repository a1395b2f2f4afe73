"""Role pacemaker, part 1: corosync 3 with knet, one link per scenario network (the guide's rings), and votequorum
as the scenario's quorum options say (guide ch. 2: full-size cluster or two_node; a qdevice)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from lab.scenario import SCENARIO_DIR, ClusterOptions
from lab.scenario_quorum import QDevice
from provision.context import Context, render


@dataclass(frozen=True)
class RingNode:
    name: str
    nodeid: int
    ring_addrs: list[str]


@dataclass(frozen=True)
class Quorum:
    """The quorum { } section's values, as corosync.conf spells them; None: not written (corosync's default)."""

    two_node: bool
    expected_votes: int | None = None
    wait_for_all: bool | None = None
    last_man_standing: bool = False
    last_man_standing_window: int | None = None
    auto_tie_breaker_node: str | None = None  # lowest | highest | space-separated node ids; None: no tie breaker
    device: QDevice | None = None
    device_host: str | None = None  # the qnetd node's address on the first link it is on
    device_votes: int | None = None  # written for ffsplit only (it must be 1); lms needs the default


def links(ctx: Context) -> list[str]:
    """The networks every cluster node has an address on: the management network first (ring0, as in the guide),
    then the others in scenario order (ring1: replication)."""
    nodes = [ctx.scenario.nodes[n] for n in ctx.cluster_nodes]
    shared = [net for net in ctx.scenario.networks if all(net in n.addresses for n in nodes)]
    return sorted(shared, key=lambda net: ctx.scenario.networks[net].purpose != "management")


def nodeids(ctx: Context) -> dict[str, int]:
    """Cluster node -> its nodeid in the nodelist (1, 2, ... in scenario order)."""
    return {n: i for i, n in enumerate(ctx.cluster_nodes, start=1)}


def quorum(ctx: Context, opts: ClusterOptions, nets: list[str]) -> Quorum:
    atb = opts.auto_tie_breaker
    ids = nodeids(ctx)
    q = Quorum(
        two_node=opts.two_node,
        expected_votes=opts.expected_votes,
        wait_for_all=opts.wait_for_all,
        last_man_standing=opts.last_man_standing,
        last_man_standing_window=opts.last_man_standing_window_ms if opts.last_man_standing else None,
        auto_tie_breaker_node=" ".join(str(ids[n]) for n in atb) if isinstance(atb, tuple) else atb,
    )
    dev = opts.qdevice
    if dev is None:
        return q
    host = ctx.scenario.nodes[dev.host].addresses
    address = next(str(host[net]) for net in nets if net in host)  # the loader made sure there is one
    votes = dev.votes(len(ids)) if dev.algorithm == "ffsplit" else None
    return dataclasses.replace(q, device=dev, device_host=address, device_votes=votes)


def source(ctx: Context) -> str:
    """The scenario file, as a path from the repository where it lies in it (a user's own file: as given)."""
    path, repo = ctx.scenario.path.resolve(), SCENARIO_DIR.parent
    return str(path.relative_to(repo)) if path.is_relative_to(repo) else str(path)


def config(ctx: Context) -> str:
    nets = links(ctx)
    ids = nodeids(ctx)
    nodes = [RingNode(n, ids[n], [str(ctx.scenario.nodes[n].addresses[net]) for net in nets]) for n in ids]
    return render(
        "corosync.conf.j2",
        source=source(ctx),
        profile=ctx.profile,
        cluster_name=f"halab-{ctx.scenario.name}{'-' + ctx.cluster if ctx.cluster else ''}"[:32],
        opts=ctx.opts,
        links=nets,
        nodes=nodes,
        quorum=quorum(ctx, ctx.opts, nets),
    )


def install(ctx: Context, node: str) -> None:
    ctx.provider.put(node, "/etc/corosync/corosync.conf", config(ctx))
    if ctx.opts.secauth:
        ctx.provider.put(node, "/etc/corosync/authkey", ctx.secrets.corosync_authkey, mode=0o400)
    else:
        ctx.provider.run(node, "rm -f /etc/corosync/authkey", check=True)
