"""Role keepalived: the VRRP VIP in front of the HAProxy nodes (guide ch. 8: "Pacemaker or Keepalived")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lab.providers.base import ProviderError
from lab.scenario import ClusterOptions, Node, Scenario
from provision.context import Context, render

CONFIG = "/etc/keepalived/keepalived.conf"
PIDFILE = "/run/keepalived/keepalived.pid"
LOG = "/var/log/halab/keepalived.log"
# -n foreground, -l log to stdout (the daemon's log file), -D detailed, -G no syslog (a netns node shares the
# host's /dev/log), -P VRRP only (no IPVS checkers here); pid files in the node's private /run.
COMMAND = f"/usr/sbin/keepalived -n -l -D -G -P -f {CONFIG} -p {PIDFILE} -r /run/keepalived/vrrp.pid"
# killall -0 finds a process without signalling it. The node has its own PID namespace and /proc, so it sees
# this node's haproxy only.
CHECK_SCRIPT = "/usr/bin/killall -0 haproxy"
TOP_PRIORITY = 150  # the first keepalived node; each next one PRIORITY_STEP lower
PRIORITY_STEP = 10
FIRST_VRID = 51  # keepalived's sample value; one more per further VIP


@dataclass(frozen=True)
class Instance:
    name: str  # vrrp_instance name: the VIP's `resource` (VI_1)
    vrid: int
    state: str  # initial state: MASTER or BACKUP
    priority: int
    interface: str
    vip: str
    prefixlen: int
    src: str  # unicast_src_ip: this node's address on the VIP's network
    peers: tuple[str, ...]  # unicast_peer: the other keepalived nodes' addresses there


def vrrp_nodes(scenario: Scenario) -> list[Node]:
    return scenario.nodes_with_role("keepalived")


def priority(scenario: Scenario, node: str) -> int:
    names = [n.name for n in vrrp_nodes(scenario)]
    return TOP_PRIORITY - PRIORITY_STEP * names.index(node)


def chk_weight(scenario: Scenario, opts: ClusterOptions) -> int:
    """chk_haproxy's weight: enough to put a failed MASTER below every healthy node (guide profile).
    0 with nopreempt: the instance then goes to FAULT instead, the only way it gives the VIP up there."""
    if opts.vrrp_nopreempt:
        return 0
    return -PRIORITY_STEP * len(vrrp_nodes(scenario))


def instances(scenario: Scenario, opts: ClusterOptions, node: str, interfaces: Mapping[str, str]) -> list[Instance]:
    """One VRRP instance per VIP; `interfaces` maps each VIP network to this node's interface on it."""
    me = scenario.nodes[node]
    first = vrrp_nodes(scenario)[0].name
    found = []
    for i, vip in enumerate(scenario.vips.values()):
        peers = tuple(str(n.addresses[vip.network]) for n in vrrp_nodes(scenario) if n.name != node)
        found.append(
            Instance(
                name=vip.resource,
                vrid=FIRST_VRID + i,
                # nopreempt is only honoured with an initial state of BACKUP on every node.
                state="MASTER" if node == first and not opts.vrrp_nopreempt else "BACKUP",
                priority=priority(scenario, node),
                interface=interfaces[vip.network],
                vip=str(vip.address),
                prefixlen=scenario.networks[vip.network].cidr.prefixlen,
                src=str(me.addresses[vip.network]),
                peers=peers,
            )
        )
    return found


def config(ctx: Context, node: str, interfaces: Mapping[str, str]) -> str:
    opts = ctx.opts
    return render(
        "keepalived.conf.j2",
        scenario=ctx.scenario.name,
        profile=ctx.profile,
        node=node,
        opts=opts,
        nopreempt=opts.vrrp_nopreempt,
        unicast=opts.vrrp_unicast,
        weight=chk_weight(ctx.scenario, opts),
        check_script=CHECK_SCRIPT,
        instances=instances(ctx.scenario, opts, node, interfaces),
    )


def interface_of(ctx: Context, node: str, network: str) -> str:
    """The node's interface on `network`, asked from the node: the one holding its address there.
    (On netns it is named after the network; on a VM it is whatever the box calls it.)"""
    addr = ctx.scenario.nodes[node].addresses[network]
    out = ctx.provider.run(node, f"ip -o -4 addr show to {addr}/32", check=True, timeout=15).stdout.split()
    if len(out) < 2:
        raise ProviderError(f"{node}: no interface holds {addr} (network {network}); is the node up?")
    return out[1].split("@")[0]


def configure_node(ctx: Context, node: str) -> None:
    networks = {vip.network for vip in ctx.scenario.vips.values()}
    interfaces = {net: interface_of(ctx, node, net) for net in networks}
    ctx.provider.put(node, CONFIG, config(ctx, node, interfaces))
    ctx.provider.run(node, f"/usr/sbin/keepalived -t -f {CONFIG}", check=True, timeout=30)


def start(ctx: Context, node: str) -> None:
    ctx.provider.run(node, "mkdir -p /run/keepalived /var/log/halab", check=True, timeout=15)
    ctx.provider.start_daemon(node, COMMAND, LOG)


def vrrp_bounds_ms(opts: ClusterOptions, priority: int = TOP_PRIORITY - PRIORITY_STEP) -> dict[str, float]:
    """VRRP's timers (RFC 3768 section 6.1; keepalived 2.2 follows it) for the BACKUP of `priority` (default:
    the second node) taking the VIP over. Every figure counts from the fault to the VIP on the BACKUP.

    - skew_ms = (256 - priority) * advert_int / 256; master_down_ms = 3 * advert_int + skew.
    - released_ms = skew: the MASTER said goodbye (SIGTERM, or a FAULT): a priority-0 advert, then the BACKUP
      waits only the skew.
    - silent_floor_ms .. master_down_ms: the MASTER vanished without a word (crash, freeze, NIC cut). The
      master-down timer runs from the last advert heard, which came up to one advert_int before the fault.
    - chk_haproxy_floor_ms .. chk_haproxy_ms: haproxy died on the MASTER. chk_haproxy fails `fall` checks
      later, between (fall - 1) and fall intervals after the death. Then, with a weight (guide profile), the
      MASTER advertises a lower priority, which a preempting BACKUP discards: master-down, from the last advert
      it accepted. With nopreempt the instance goes to FAULT and sends a priority-0 advert: the skew.
    """
    advert = opts.vrrp_advert_int_s * 1000
    skew = (256 - priority) * advert / 256
    master_down = 3 * advert + skew
    interval = opts.chk_haproxy_interval_s * 1000
    if opts.vrrp_nopreempt:
        after_check_floor = after_check = skew
    else:
        after_check_floor, after_check = master_down - advert, master_down
    return {
        "advert_ms": advert,
        "skew_ms": skew,
        "master_down_ms": master_down,
        "silent_floor_ms": master_down - advert,
        "released_ms": skew,
        "chk_haproxy_ms": interval * opts.chk_haproxy_fall + after_check,
        "chk_haproxy_floor_ms": interval * (opts.chk_haproxy_fall - 1) + after_check_floor,
    }
