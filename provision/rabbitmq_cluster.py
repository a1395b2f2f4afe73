"""Role rabbitmq, active/active: guide ch. 7 "RabbitMQ cluster" (RabbitMQ 3.10).

The guide's steps: one Erlang cookie on every node (0400, rabbitmq:rabbitmq), `stop_app`,
`join_cluster rabbit@<first>`, `start_app` on the others, and the `ha-all` policy so queues are
mirrored. The hardened profile declares quorum queues instead (the workload asks for them)."""

from __future__ import annotations

import json

from lab.wait import until
from provision.context import Context
from provision.rabbitmq import COOKIE, ENV

# The guide's policy pattern is garbled in the 2015 text (`(!amq .),*`); RabbitMQ's docs write it so.
HA_ALL = "rabbitmqctl set_policy ha-all '^(?!amq\\.).*' '{\"ha-mode\": \"all\"}'"
# Erlang boots, RabbitMQ loads its plugins and mnesia: seconds on an idle machine, more on a busy 2-core one.
BOOT_S = 60
# One stop_app/reset/join of a fresh node: a few seconds; several attempts fit in BOOT_S.
JOIN_ATTEMPT_S = 20


# Erlang's net_ticktime, which the lab (like the guide) leaves at its default: a peer that goes silent (a crash,
# a cut) is declared down after ticktime x (1 +- 1/4), and a mirrored queue whose master it held takes confirms
# again only after that.
NET_TICKTIME_S = 60


def silent_departure_bound_ms() -> int:
    return int(NET_TICKTIME_S * 1.25 * 1000)


def nodes(ctx: Context) -> list[str]:
    return [n.name for n in ctx.scenario.nodes_with_role("rabbitmq")]


def nodename(node: str) -> str:
    return f"rabbit@{node}"


def configure_node(ctx: Context, node: str) -> None:
    ctx.provider.put(node, COOKIE, ctx.secrets.erlang_cookie, mode=0o400, owner="rabbitmq:rabbitmq")
    ctx.provider.put(node, "/etc/rabbitmq/rabbitmq-env.conf", f"NODENAME={nodename(node)}\n" + ENV)


def start(ctx: Context, node: str) -> None:
    ctx.provider.start_daemon(node, "/usr/sbin/rabbitmq-server", "/var/log/rabbitmq/halab-start.log")


def await_started(ctx: Context, node: str, timeout: float = BOOT_S) -> None:
    # `await_startup` gives up at once while the node is not registered with epmd yet: poll a ping instead.
    until(
        lambda: ctx.provider.run(node, f"rabbitmq-diagnostics -n {nodename(node)} -q ping", timeout=20).ok,
        timeout=timeout,
        interval=0.5,
        what=f"RabbitMQ on {node} to answer a ping",
        seen=lambda: ctx.provider.run(node, "tail -5 /var/log/rabbitmq/*.log").stdout,
    )


def running_nodes(ctx: Context, node: str) -> list[str]:
    r = ctx.provider.run(node, f"rabbitmqctl -n {nodename(node)} cluster_status --formatter json", timeout=20)
    if not r.ok:
        return []
    try:
        return sorted(json.loads(r.stdout).get("running_nodes", []))
    except json.JSONDecodeError:
        return []


def converge(ctx: Context) -> None:
    members = nodes(ctx)
    for n in members:
        configure_node(ctx, n)
        start(ctx, n)
    for n in members:
        await_started(ctx, n)
    first = members[0]
    for n in members[1:]:
        join(ctx, n, first)
    want = sorted(nodename(n) for n in members)
    until(
        lambda: running_nodes(ctx, first) == want,
        timeout=BOOT_S,
        what=f"RabbitMQ cluster {want}",
        seen=lambda: running_nodes(ctx, first),
    )
    q = f"rabbitmqctl -n {nodename(first)} -q"
    # the password on stdin, never in a command line (a failed command's text goes into errors and reports)
    ctx.provider.run(first, f"{q} add_user halab", check=True, timeout=60, input=ctx.secrets.rabbitmq_password.encode())
    grant = f"{q} set_permissions -p / halab '.*' '.*' '.*' && {HA_ALL.replace('rabbitmqctl', q)}"
    ctx.provider.run(first, grant, check=True, timeout=60)


def join(ctx: Context, node: str, first: str) -> None:
    """The guide's stop_app / join_cluster / start_app. A join right after the peers booted sometimes fails with
    `tables_not_present` (mnesia still loading on the target): reset the fresh joiner and try again, bounded."""
    rabbitmqctl = f"rabbitmqctl -n {nodename(node)}"
    attempt = f"{rabbitmqctl} stop_app && {rabbitmqctl} reset && {rabbitmqctl} join_cluster {nodename(first)}"
    last: list[str] = []

    def joined() -> bool:
        r = ctx.provider.run(node, attempt, timeout=JOIN_ATTEMPT_S)
        last[:] = [r.stderr.strip() or r.stdout.strip()]
        return r.ok

    until(joined, timeout=BOOT_S, interval=1.0, what=f"{node} to join {first}'s cluster", seen=lambda: last)
    ctx.provider.run(node, f"{rabbitmqctl} start_app", check=True, timeout=BOOT_S)


def rejoin(ctx: Context, node: str) -> None:
    """A restarted node starts RabbitMQ again; it remembers the cluster from its mnesia dir."""
    configure_node(ctx, node)
    start(ctx, node)
    await_started(ctx, node)
