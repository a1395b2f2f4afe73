"""Role rabbitmq: guide ch. 3 "Highly available RabbitMQ" (RabbitMQ 3.10 on the shared disk)."""

from __future__ import annotations

from provision.context import Context, render

MOUNT = "/run/halab-mnt/rabbitmq"
COOKIE = "/var/lib/rabbitmq/.erlang.cookie"
NODE = "-n rabbit@localhost"  # the guide's p_rabbitmq nodename, not the host name
# Lab-sized Erlang VM: one scheduler, small allocator carriers (RabbitMQ's own low-memory advice).
ENV = 'SERVER_ADDITIONAL_ERL_ARGS="+S 1:1 +A 4 +sbwt none +sbwtdcpu none +sbwtdio none +MBlmbcs 512 +MHlmbcs 512"\n'


def configure_node(ctx: Context, node: str) -> None:
    """The guide's `.erlang.cookie` step: the same cookie on every node, under the mount point too."""
    ctx.provider.put(node, COOKIE, ctx.secrets.erlang_cookie, mode=0o400, owner="rabbitmq:rabbitmq")
    ctx.provider.put(node, "/etc/rabbitmq/rabbitmq-env.conf", ENV)


def prepare_disk(ctx: Context, node: str, device: str) -> None:
    """...and a copy on the shared filesystem (the guide's `cp -a .erlang.cookie /mnt`)."""
    ctx.provider.run(
        node,
        f"mkdir -p {MOUNT} && mount -t xfs {device} {MOUNT} && "
        f"cp -a {COOKIE} {MOUNT}/ && chown rabbitmq:rabbitmq {MOUNT}; rc=$?; "
        f"umount {MOUNT}; exit $rc",
        check=True,
        timeout=60,
    )


def crm(ctx: Context, device: str) -> str:
    vip = ctx.scenario.vip_for("rabbitmq")
    prefix = ctx.scenario.networks[vip.network].cidr.prefixlen
    group = ctx.scenario.services["rabbitmq"].group
    return render(
        "rabbitmq.crm.j2",
        vip=vip.address,
        prefixlen=prefix,
        device=device,
        drbd=ctx.drbd,
        ip_id=vip.resource,
        group=group,
    )


def create_client_account(ctx: Context, node: str) -> None:
    # the password on stdin (rabbitmqctl reads it there when the argument is left out), never in a command line:
    # a failed command's text goes into errors, logs and reports
    users = ctx.provider.run(node, f"rabbitmqctl {NODE} -q list_users", check=True, timeout=60).stdout
    if not any(line.split()[:1] == ["halab"] for line in users.splitlines()):
        pw = ctx.secrets.rabbitmq_password.encode()
        ctx.provider.run(node, f"rabbitmqctl {NODE} -q add_user halab", check=True, timeout=60, input=pw)
    ctx.provider.run(node, f"rabbitmqctl {NODE} -q set_permissions -p / halab '.*' '.*' '.*'", check=True, timeout=60)
