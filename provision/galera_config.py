"""Role galera, its settings: where MariaDB and clustercheck keep their files, how long the database may take, and
what is written to the nodes: galera.cnf (with evs timers scaled from the scenario) and the lab's accounts.

Pure and unit-tested; separate from the functions that drive the daemons (provision/galera.py,
galera_status.py, galera_recovery.py), which all read these paths and deadlines.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from lab.scenario import ClusterOptions
from provision import mysql
from provision.context import Context, render

DATADIR = "/var/lib/mysql"
GRASTATE = f"{DATADIR}/grastate.dat"
CNF = "/etc/mysql/mariadb.conf.d/60-galera.cnf"  # replaces the packaged, all-commented 60-galera.cnf
SOCKET = "/run/mysqld/mysqld.sock"
LOG = "/var/log/mysql/mariadbd.log"  # mariadbd's stderr: without --log-error it logs there
MARIADBD = "mariadbd --user=mysql"
CLUSTER_NAME = "galera_cluster"  # the guide's wsrep_cluster_name
ZERO_UUID = "00000000-0000-0000-0000-000000000000"
# /var/lib is the node's own overlay (kept across a restart, like a disk); /usr/local and /etc/sysconfig are the host's.
CLUSTERCHECK = "/var/lib/halab/clustercheck.py"
CLUSTERCHECK_CNF = "/etc/mysql/clustercheck.cnf"
CLUSTERCHECK_LOG = "/var/log/halab/clustercheck.log"
CLUSTERCHECK_PORT = 9200
CLUSTERCHECK_SRC = Path(__file__).resolve().parent / "files" / "clustercheck.py"

# Deadlines, in seconds. Galera's own timers come from the scenario (below); these two are for the database itself,
# generous for a loaded 2-core CI host:
START_S = 60.0  # InnoDB start or crash recovery of a lab datadir (16 MiB buffer pool, a few MiB of redo): seconds
SST_S = 120.0  # rsync SST of a whole lab datadir (~100 MiB) between namespaces of one kernel: a few seconds


class GaleraError(RuntimeError):
    """The cluster cannot be brought to the state asked for; the message says what was seen."""


# ----------------------------------------------------------------------------------------------- pure: timers, config


def iso_duration(ms: int) -> str:
    """Galera's duration syntax (ISO 8601): 5000 -> PT5S, 1500 -> PT1.5S."""
    seconds = f"{ms / 1000:.3f}".rstrip("0").rstrip(".")
    return f"PT{seconds}S"


def evs_timers_ms(opts: ClusterOptions) -> dict[str, int]:
    """evs timers scaled from the scenario's suspect timeout, keeping galera's default ratios (PT5S suspect,
    PT15S inactive, PT7.5S install, PT1S keepalive, PT0.5S inactive check): galera's defaults at 5000 ms, and the
    ordering galera expects (keepalive < suspect < inactive) at any value."""
    s = opts.galera_suspect_timeout_ms
    return {
        "evs.suspect_timeout": s,
        "evs.inactive_timeout": 3 * s,
        "evs.install_timeout": 3 * s // 2,
        "evs.keepalive_period": s // 5,
        "evs.inactive_check_period": s // 10,
    }


def provider_options(opts: ClusterOptions) -> str:
    timers = [f"{k}={iso_duration(v)}" for k, v in evs_timers_ms(opts).items()]
    return "; ".join([*timers, "gcache.size=32M"])


def departure_bound_s(opts: ClusterOptions) -> float:
    """Longest a silent member can stay in the others' view: suspected after evs.suspect_timeout, dropped for sure
    after evs.inactive_timeout, plus one view installation (evs.install_timeout)."""
    t = evs_timers_ms(opts)
    return (t["evs.inactive_timeout"] + t["evs.install_timeout"]) / 1000


def join_deadline_s(opts: ClusterOptions) -> float:
    """Start (InnoDB) + state transfer (SST; IST is far shorter) + membership: a restarted node can be admitted only
    once its previous incarnation has left the others' view (departure_bound_s)."""
    return START_S + SST_S + departure_bound_s(opts)


def galera_nodes(ctx: Context) -> list[str]:
    return [n.name for n in ctx.scenario.nodes_with_role("galera")]


def node_address(ctx: Context, node: str) -> str:
    """The node's address on the network HAProxy reaches Galera on (the galera service's VIP network), else its
    first address."""
    addresses = ctx.scenario.nodes[node].addresses
    if "galera" in ctx.scenario.services:
        net = ctx.scenario.vip_for("galera").network
        if net in addresses:
            return str(addresses[net])
    return str(next(iter(addresses.values())))


def render_config(ctx: Context, node: str) -> str:
    return render(
        "galera.cnf.j2",
        node=node,
        scenario=ctx.scenario.name,
        profile=ctx.profile,
        address=node_address(ctx, node),
        members=[node_address(ctx, n) for n in galera_nodes(ctx)],
        cluster_name=CLUSTER_NAME,
        provider_options=provider_options(ctx.opts),
    )


def clustercheck_password(ctx: Context) -> str:
    """Per lab, derived from the lab's MySQL secret (provision/secrets.py has no field for it): never the guide's
    sample, and the same on every node without another file to keep."""
    return hmac.new(ctx.secrets.mysql_password.encode(), b"halab clustercheck", hashlib.sha256).hexdigest()[:24]


def accounts_sql(ctx: Context) -> str:
    """The lab's client account and table (as provision/mysql.py) and the guide's clustercheck account.
    Run once on a primary node: Galera replicates DDL and account statements to the others."""
    return (
        mysql.client_sql(ctx) + " "
        # guide step 2c; SHOW STATUS needs no privilege beyond USAGE
        f"CREATE USER IF NOT EXISTS 'clustercheck'@'localhost' IDENTIFIED BY '{clustercheck_password(ctx)}';"
    )
