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

Pure helpers (config rendering, status and grastate.dat parsing, choosing the node to bootstrap after a full crash)
sit at the top and are unit-tested; the functions below them drive real daemons.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from lab.providers.base import ProviderError
from lab.scenario import ClusterOptions
from lab.wait import until
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


# ----------------------------------------------------------------------------------------------- pure: parsing


def parse_status(text: str) -> dict[str, str]:
    """`mysql -N -B -e "SHOW STATUS LIKE 'wsrep%'"` output (name TAB value per line) as a dict."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("\t")
        if sep and name:
            out[name] = value
    return out


def is_member(st: Mapping[str, str], size: int | None = None) -> bool:
    """Synced in a primary component (of `size` members, if given)."""
    return (
        st.get("wsrep_cluster_status") == "Primary"
        and st.get("wsrep_local_state_comment") == "Synced"
        and st.get("wsrep_ready") == "ON"
        and (size is None or st.get("wsrep_cluster_size") == str(size))
    )


def summary(st: Mapping[str, str]) -> str:
    if not st:
        return "mysqld down"
    return (
        f"size={st.get('wsrep_cluster_size')} {st.get('wsrep_cluster_status')} "
        f"{st.get('wsrep_local_state_comment')} seqno={st.get('wsrep_last_committed')}"
    )


@dataclass(frozen=True)
class GraState:
    """/var/lib/mysql/grastate.dat: where galera saved its position (seqno -1 while running or after a crash)."""

    uuid: str
    seqno: int
    safe_to_bootstrap: bool


def parse_grastate(text: str) -> GraState:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and not key.lstrip().startswith("#"):
            fields[key.strip()] = value.strip()
    try:
        return GraState(
            uuid=fields["uuid"],
            seqno=int(fields["seqno"]),
            # galera < 3.19 wrote no safe_to_bootstrap: it did not guard bootstraps, so it counts as safe
            safe_to_bootstrap=fields.get("safe_to_bootstrap", "1") == "1",
        )
    except (KeyError, ValueError) as exc:
        raise ValueError(f"not a grastate.dat (missing or bad {exc}): {text[:200]!r}") from None


_RECOVERED = re.compile(r"WSREP: Recovered position:\s+([0-9a-f]{8}-[0-9a-f-]{27}):(-?\d+)")


def parse_recovered_position(text: str) -> tuple[str, int] | None:
    """The last `WSREP: Recovered position: <uuid>:<seqno>` line `mariadbd --wsrep-recover` logged, if any."""
    found = _RECOVERED.findall(text)
    if not found:
        return None
    uuid, seqno = found[-1]
    return uuid, int(seqno)


# ----------------------------------------------------------------------------------------------- pure: choosing


@dataclass(frozen=True)
class Position:
    """One node's last committed position after a full crash. seqno -1: unknown."""

    node: str
    uuid: str
    seqno: int
    safe_to_bootstrap: bool = False
    source: str = "grastate"  # grastate | wsrep-recover | missing

    def __str__(self) -> str:
        flag = " safe_to_bootstrap" if self.safe_to_bootstrap else ""
        return f"{self.node} {self.uuid}:{self.seqno} ({self.source}{flag})"


@dataclass(frozen=True)
class Choice:
    node: str
    reason: str
    positions: tuple[Position, ...] = ()
    timings_s: dict[str, float] = field(default_factory=dict, compare=False)


def choose_bootstrap_node(positions: Sequence[Position]) -> Choice:
    """The node to bootstrap the cluster from after every node stopped: the one with the highest seqno, since any
    other would throw away the transactions only the most advanced one committed (they would get an SST of the
    older state). Ties: safe_to_bootstrap first (galera sets it on the last node to leave cleanly), then the
    order given (scenario order, so the choice is reproducible). Refuses when positions are unknown everywhere or
    the nodes have different histories (cluster UUIDs): that needs a human."""
    candidates = [p for p in positions if p.seqno >= 0 and p.uuid and p.uuid != ZERO_UUID]
    table = "; ".join(str(p) for p in positions)
    if not candidates:
        raise GaleraError(f"no node knows its position, cannot choose one to bootstrap from: {table}")
    uuids = sorted({p.uuid for p in candidates})
    if len(uuids) > 1:
        raise GaleraError(f"nodes disagree on the cluster's history ({', '.join(uuids)}); choose by hand: {table}")
    order = {p.node: i for i, p in enumerate(positions)}
    best = max(candidates, key=lambda p: (p.seqno, p.safe_to_bootstrap, -order[p.node]))
    others = [p for p in positions if p.node != best.node]
    why = f"highest seqno {best.seqno}"
    tied = [p.node for p in others if p.seqno == best.seqno]
    if tied:
        why += f", tied with {', '.join(tied)}, " + (
            "and it has safe_to_bootstrap: 1" if best.safe_to_bootstrap else "first in scenario order"
        )
    elif best.safe_to_bootstrap:
        why += ", safe_to_bootstrap: 1"
    unknown = [p.node for p in others if p not in candidates]
    if unknown:
        why += f"; position unknown on {', '.join(unknown)}"
    behind = [p for p in others if p in candidates and p.seqno < best.seqno]
    if behind:
        why += "; behind: " + ", ".join(f"{p.node} {p.seqno}" for p in behind)
    return Choice(node=best.node, reason=f"{best.node}: {why}", positions=tuple(positions))


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


def status(ctx: Context, node: str) -> dict[str, str]:
    """SHOW STATUS LIKE 'wsrep%' through the node's socket; {} when mysqld does not answer (down, crashed node,
    still in SST, or frozen past the timeout)."""
    try:
        r = ctx.provider.run(
            node,
            "mysql --protocol=socket -uroot -N -B --connect-timeout=2 -e \"SHOW GLOBAL STATUS LIKE 'wsrep%'\"",
            timeout=10,
        )
    except ProviderError:
        return {}  # the node itself is not running
    return parse_status(r.stdout) if r.ok else {}


def mariadbd_running(ctx: Context, node: str) -> bool:
    try:
        return ctx.provider.run(node, "pgrep -x mariadbd", timeout=10).ok
    except ProviderError:
        return False


def _log_tail(ctx: Context, node: str, lines: int = 15) -> str:
    try:
        return ctx.provider.run(node, f"tail -n {lines} {LOG}", timeout=10).stdout
    except ProviderError as exc:
        return str(exc)


def _start(ctx: Context, node: str, *, new_cluster: bool, position: Position | None = None) -> None:
    if mariadbd_running(ctx, node):
        raise GaleraError(f"{node}: mariadbd is already running ({summary(status(ctx, node))})")
    cmd = MARIADBD
    if position is not None and position.source == "wsrep-recover" and position.seqno >= 0:
        # What mysqld_safe / Debian's galera_recovery pass after a crash: without it mariadbd starts from
        # 00000000-...:-1, a joiner then needs a full SST, and a bootstrapped node starts a new history (new UUID).
        cmd += f" --wsrep-start-position={position.uuid}:{position.seqno}"
    if new_cluster:
        # On this process's command line only: a later restart of the node (start_node) joins, which is why the
        # guide restarts node 1 once the others are up; not needed here.
        cmd += " --wsrep-new-cluster"
    ctx.provider.start_daemon(node, cmd, LOG)


def wait_member(ctx: Context, node: str, *, timeout: float, size: int | None = None) -> dict[str, str]:
    """Until `node` is Synced in a primary component (of `size` members if given, else of every galera node that
    answers). Fails fast, with the log's tail, if mariadbd exits."""
    started = time.monotonic()

    def ready() -> dict[str, str] | None:
        st = status(ctx, node)
        if not st and time.monotonic() - started > 5 and not mariadbd_running(ctx, node):
            raise GaleraError(f"{node}: mariadbd exited while starting; {LOG} ends:\n{_log_tail(ctx, node)}")
        if not is_member(st, size):
            return None
        if size is None:
            answering = [n for n in galera_nodes(ctx) if n == node or is_member(status(ctx, n))]
            if st.get("wsrep_cluster_size") != str(len(answering)):
                return None
        return st

    return until(
        ready,
        timeout=timeout,
        interval=0.25,
        what=f"{node} to be Synced in a primary component" + (f" of {size}" if size else ""),
        seen=lambda: f"{summary(status(ctx, node))}; log: {_log_tail(ctx, node, 5)}",
    )


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


def wait_all(ctx: Context, nodes: Sequence[str], *, timeout: float) -> dict[str, dict[str, str]]:
    """Until every node in `nodes` is Synced in one primary component of exactly len(nodes) members."""

    def ready() -> dict[str, dict[str, str]] | None:
        states = {n: status(ctx, n) for n in nodes}
        uuids = {st.get("wsrep_cluster_state_uuid") for st in states.values()}
        ok = all(is_member(st, len(nodes)) for st in states.values()) and len(uuids) == 1
        return states if ok else None

    return until(
        ready,
        timeout=timeout,
        interval=0.25,
        what=f"{', '.join(nodes)} to be Synced in one primary component of {len(nodes)}",
        seen=lambda: {n: summary(status(ctx, n)) for n in nodes},
    )


def start_node(ctx: Context, node: str, position: Position | None = None) -> dict[str, str]:
    """Start one node's mariadbd again, joining the running cluster, from its own position (read_position, unless
    given): a node that missed what the donor's gcache still holds gets IST, else SST. Returns its status once
    Synced."""
    _start(ctx, node, new_cluster=False, position=position or read_position(ctx, node))
    return wait_member(ctx, node, timeout=join_deadline_s(ctx.opts))


def read_position(ctx: Context, node: str) -> Position:
    """grastate.dat, and where it says seqno -1 (a crash), `mariadbd --wsrep-recover` (InnoDB's last committed
    position; the server exits after logging it)."""
    r = ctx.provider.run(node, f"cat {GRASTATE}", timeout=10)
    gs = parse_grastate(r.stdout) if r.ok else None
    if gs is not None and gs.seqno >= 0:
        return Position(node, gs.uuid, gs.seqno, gs.safe_to_bootstrap, "grastate")
    rec = ctx.provider.run(node, f"{MARIADBD} --wsrep-recover --disable-log-error 2>&1", timeout=START_S)
    found = parse_recovered_position(rec.stdout)
    if found is None:
        return Position(node, gs.uuid if gs else ZERO_UUID, -1, bool(gs and gs.safe_to_bootstrap), "missing")
    uuid, seqno = found
    return Position(node, uuid, seqno, bool(gs and gs.safe_to_bootstrap), "wsrep-recover")


def recover_all(ctx: Context) -> Choice:
    """After every galera node stopped (crashed, then restarted as machines: provider.restart): find the most
    advanced node, bootstrap the cluster from it and start the others. If some node still runs a primary
    component, nothing is bootstrapped: the others join it."""
    t0 = time.monotonic()
    nodes = [n for n in galera_nodes(ctx) if ctx.provider.is_running(n)]
    if not nodes:
        raise GaleraError("no galera node is running: restart the nodes (provider.restart) first")
    live = [n for n in nodes if is_member(status(ctx, n))]
    if live:
        for n in nodes:
            if not mariadbd_running(ctx, n):
                start_node(ctx, n)
        return Choice(live[0], f"{live[0]} still runs a primary component: the others joined it, no bootstrap")
    busy = [n for n in nodes if mariadbd_running(ctx, n)]
    if busy:
        raise GaleraError(
            f"mariadbd runs without a primary component on {', '.join(busy)} "
            f"({'; '.join(summary(status(ctx, n)) for n in busy)}): stop it before recovering"
        )
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:  # each --wsrep-recover runs InnoDB crash recovery
        positions = list(pool.map(lambda n: read_position(ctx, n), nodes))
    t = {"positions": time.monotonic() - t0}
    choice = choose_bootstrap_node(positions)
    chosen = next(p for p in positions if p.node == choice.node)
    if not chosen.safe_to_bootstrap:
        # galera refuses --wsrep-new-cluster on a node not known to have left last; we have checked it by seqno
        ctx.provider.run(
            choice.node, f"sed -i 's/^safe_to_bootstrap:.*/safe_to_bootstrap: 1/' {GRASTATE}", check=True, timeout=10
        )
    t1 = time.monotonic()
    _start(ctx, choice.node, new_cluster=True, position=chosen)
    wait_member(ctx, choice.node, size=1, timeout=START_S)
    t["bootstrap"] = time.monotonic() - t1
    for pos in positions:
        if pos.node != choice.node:
            t2 = time.monotonic()
            start_node(ctx, pos.node, pos)
            t[f"join_{pos.node}"] = time.monotonic() - t2
    wait_all(ctx, nodes, timeout=departure_bound_s(ctx.opts) + 10)
    t["total"] = time.monotonic() - t0
    return Choice(choice.node, choice.reason, choice.positions, t)


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
