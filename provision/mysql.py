"""Role mysql: guide ch. 3 "Highly available MySQL" (MariaDB 10.11 on the shared disk)."""

from __future__ import annotations

from provision.context import Context, render

MOUNT = "/run/halab-mnt/mysql"


def prepare_disk(ctx: Context, node: str, device: str) -> None:
    """The guide's `mysql_install_db --datadir=/mnt` on the (DRBD or stand-in) device, once."""
    ctx.provider.run(
        node,
        f"mkdir -p {MOUNT} && mount -t xfs {device} {MOUNT} && "
        f"mariadb-install-db --user=mysql --datadir={MOUNT} --skip-test-db "
        f"--auth-root-authentication-method=socket >/var/log/mysql/install-db.log 2>&1; rc=$?; "
        f"umount {MOUNT}; [ $rc = 0 ] || tail -20 /var/log/mysql/install-db.log >&2; exit $rc",
        check=True,
        timeout=120,
    )


def configure_node(ctx: Context, node: str) -> None:
    ctx.provider.put(node, "/etc/mysql/mariadb.conf.d/90-halab.cnf", render("mariadb-halab.cnf.j2"))


def crm(ctx: Context, device: str) -> str:
    vip = ctx.scenario.vip_for("mysql")
    prefix = ctx.scenario.networks[vip.network].cidr.prefixlen
    group = ctx.scenario.services["mysql"].group
    return render(
        "mysql.crm.j2", vip=vip.address, prefixlen=prefix, device=device, drbd=ctx.drbd, ip_id=vip.resource, group=group
    )


def client_sql(ctx: Context) -> str:
    """The lab's client account and table: created on the active node through the local socket."""
    pw = ctx.secrets.mysql_password
    return (
        "CREATE DATABASE IF NOT EXISTS halab; "
        f"CREATE USER IF NOT EXISTS 'halab'@'%' IDENTIFIED BY '{pw}'; "
        "GRANT ALL ON halab.* TO 'halab'@'%'; "
        "CREATE TABLE IF NOT EXISTS halab.writes (id BIGINT PRIMARY KEY, client VARCHAR(64), "
        "at DOUBLE) ENGINE=InnoDB;"
    )


def create_client_account(ctx: Context, node: str) -> None:
    ctx.provider.run(node, "mysql --protocol=socket -uroot", check=True, timeout=30, input=client_sql(ctx).encode())
