"""Role galera: guide ch. 6 "Galera MariaDB" - a multi-master MariaDB 10.11 + galera-4 cluster on every node with the
`galera` role, rsync SST, and the clustercheck responder HAProxy checks on port 9200.

Translations of the guide's steps (the config file's are in templates/galera.cnf.j2):
  yum/apt-get install mariadb-galera-server galera  -> Debian 12's mariadb-server + galera-4, installed by .ci/setup
  `service mysql start --wsrep-new-cluster` (node 1), `sudo -u mysql mysqld --wsrep-cluster-address='gcomm://' &`
                                -> `mariadbd --user=mysql --wsrep-new-cluster` through ctx.provider.start_daemon (no
                                   systemd in the nodes); the others plain `mariadbd --user=mysql`
  restart node 1 once the others are up
                                -> not needed: --wsrep-new-cluster is on that process's command line only
  GRANT ... TO wsrep_sst@'%' (wsrep_sst_auth)
                                -> dropped: rsync SST needs no account
  DELETE FROM mysql.user WHERE user=''
                                -> dropped: mariadb-install-db --skip-test-db creates no anonymous account
  debian.cnf copied to every node, debian-sys-maint grants
                                -> dropped: Debian 12's root logs in over the socket (unix_socket), no debian-sys-maint
  iptables / firewall-cmd for 3306, 4444, 4567, 4568, 9200
                                -> nothing to open: lab nodes have no firewall
  xinetd galera-monitor + /usr/bin/clustercheck, /etc/sysconfig/clustercheck
                                -> files/clustercheck.py (an HTTP server) + /etc/mysql/clustercheck.cnf
  (mysqld_safe's / galera_recovery's --wsrep-recover before every start)
                                -> read_position() + --wsrep-start-position: after a crash a joiner gets IST instead
                                   of a full SST, and a bootstrapped node keeps the cluster's history (UUID, seqno)

The role is split by what each part does; in each, the pure helpers (config rendering, status and grastate.dat
parsing, choosing the node to bootstrap after a full crash) sit at the top and are unit-tested, and the functions
below them drive real daemons:
  galera_config.py    paths, deadlines, GaleraError; evs timers, galera.cnf and the lab's accounts
  galera_status.py    wsrep status: parsed, asked of a node, waited for until nodes are Synced members
  galera_recovery.py  positions (grastate.dat, --wsrep-recover), the bootstrap choice, starting mariadbd from a
                      position, one node's restart and the whole cluster's recovery after a full crash
This module runs the first bootstrap (guide ch. 6) and clustercheck, and re-exports the other modules' names, so
`galera.status(ctx, node)` and `from provision.galera import ...` keep working.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from lab.wait import until
from provision.context import Context, render
from provision.galera_config import (
    CLUSTER_NAME,
    CLUSTERCHECK,
    CLUSTERCHECK_CNF,
    CLUSTERCHECK_LOG,
    CLUSTERCHECK_PORT,
    CLUSTERCHECK_SRC,
    CNF,
    DATADIR,
    GRASTATE,
    LOG,
    MARIADBD,
    SOCKET,
    SST_S,
    START_S,
    ZERO_UUID,
    GaleraError,
    accounts_sql,
    clustercheck_password,
    departure_bound_s,
    evs_timers_ms,
    galera_nodes,
    iso_duration,
    join_deadline_s,
    node_address,
    provider_options,
    render_config,
)
from provision.galera_recovery import (
    Choice,
    GraState,
    Position,
    _start,
    choose_bootstrap_node,
    parse_grastate,
    parse_recovered_position,
    read_position,
    recover_all,
    start_node,
)
from provision.galera_status import (
    is_member,
    mariadbd_running,
    parse_status,
    status,
    summary,
    wait_all,
    wait_member,
)

__all__ = [
    "CLUSTERCHECK",
    "CLUSTERCHECK_CNF",
    "CLUSTERCHECK_LOG",
    "CLUSTERCHECK_PORT",
    "CLUSTERCHECK_SRC",
    "CLUSTER_NAME",
    "CNF",
    "DATADIR",
    "GRASTATE",
    "LOG",
    "MARIADBD",
    "SOCKET",
    "SST_S",
    "START_S",
    "ZERO_UUID",
    "Choice",
    "GaleraError",
    "GraState",
    "Position",
    "accounts_sql",
    "bootstrap",
    "choose_bootstrap_node",
    "clustercheck_password",
    "configure_node",
    "departure_bound_s",
    "evs_timers_ms",
    "galera_nodes",
    "init_datadir",
    "is_member",
    "iso_duration",
    "join_deadline_s",
    "mariadbd_running",
    "node_address",
    "parse_grastate",
    "parse_recovered_position",
    "parse_status",
    "provider_options",
    "read_position",
    "recover_all",
    "render_config",
    "start_clustercheck",
    "start_node",
    "status",
    "summary",
    "wait_all",
    "wait_member",
]

# ----------------------------------------------------------------------------------------------- daemons


def configure_node(ctx: Context, node: str) -> None:
    ctx.provider.put(node, CNF, render_config(ctx, node))


def init_datadir(ctx: Context, node: str) -> None:
    """A fresh datadir (the node's /var/lib starts as a copy of the host's packaged one: start from nothing)."""
    ctx.provider.run(
        node,
        f"find {DATADIR} -mindepth 1 -delete && "
        f"mariadb-install-db --user=mysql --datadir={DATADIR} --skip-test-db "
        f"--auth-root-authentication-method=socket >/var/log/mysql/install-db.log 2>&1",
        check=True,
        timeout=180,
    )


def _mysql(ctx: Context, node: str, sql: str, *, timeout: float = 30.0, check: bool = False) -> str:
    cmd = "mysql --protocol=socket -uroot -N -B --connect-timeout=2"
    r = ctx.provider.run(node, cmd, timeout=timeout, check=check, input=sql.encode())
    return r.stdout if r.ok else ""


def bootstrap(ctx: Context) -> dict[str, float]:
    """Guide ch. 6: fresh datadirs, the first node with --wsrep-new-cluster, the others join one at a time (rsync
    SST), then the lab's accounts. Returns seconds per phase."""
    nodes = galera_nodes(ctx)
    if not nodes:
        raise GaleraError(f"scenario {ctx.scenario.name} has no node with the galera role")
    busy = [n for n in nodes if mariadbd_running(ctx, n)]
    if busy:  # init_datadir would wipe a live member's data
        raise GaleraError(f"mariadbd already runs on {', '.join(busy)}: bootstrap is for a new cluster only")
    t: dict[str, float] = {}
    t0 = time.monotonic()
    for n in nodes:
        configure_node(ctx, n)
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:  # mostly disk and fork: overlaps well on 2 cores
        list(pool.map(lambda n: init_datadir(ctx, n), nodes))
    t["init_datadir"] = time.monotonic() - t0

    first, *joiners = nodes
    t1 = time.monotonic()
    _start(ctx, first, new_cluster=True)
    wait_member(ctx, first, size=1, timeout=START_S)
    _mysql(ctx, first, accounts_sql(ctx), check=True)  # before the joiners: their SST carries it
    t["first_node"] = time.monotonic() - t1

    for i, n in enumerate(joiners, start=2):
        t2 = time.monotonic()
        _start(ctx, n, new_cluster=False)
        wait_member(ctx, n, size=i, timeout=join_deadline_s(ctx.opts))
        t[f"join_{n}"] = time.monotonic() - t2
    wait_all(ctx, nodes, timeout=departure_bound_s(ctx.opts) + 10)
    t["total"] = time.monotonic() - t0
    return t


# ----------------------------------------------------------------------------------------------- clustercheck


def start_clustercheck(ctx: Context, node: str) -> None:
    """Guide ch. 6 step 2: clustercheck behind xinetd on port 9200, here a small HTTP server of its own."""
    ctx.provider.put(node, CLUSTERCHECK, CLUSTERCHECK_SRC.read_text(), mode=0o755)
    ctx.provider.put(
        node,
        CLUSTERCHECK_CNF,
        render("galera-clustercheck.cnf.j2", password=clustercheck_password(ctx), socket=SOCKET),
        mode=0o600,
    )
    if _listening(ctx, node):
        return  # already serving (it reads the option file on every check)
    ctx.provider.start_daemon(node, f"/usr/bin/python3 {CLUSTERCHECK} --port {CLUSTERCHECK_PORT}", CLUSTERCHECK_LOG)
    until(
        lambda: _listening(ctx, node),
        timeout=15,
        interval=0.1,
        what=f"clustercheck to listen on {node}:{CLUSTERCHECK_PORT}",
        seen=lambda: ctx.provider.run(node, f"tail -n 5 {CLUSTERCHECK_LOG}", timeout=10).stdout,
    )


def _listening(ctx: Context, node: str) -> bool:
    r = ctx.provider.run(node, f"ss -Hltn 'sport = :{CLUSTERCHECK_PORT}'", timeout=10)
    return r.ok and bool(r.stdout.strip())
