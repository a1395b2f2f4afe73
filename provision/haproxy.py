"""Role haproxy: guide ch. 8 "HAProxy nodes" (HAProxy 2.6), one `listen` block per scenario service."""

from __future__ import annotations

import csv
import shlex
from dataclasses import dataclass

from lab.scenario import ClusterOptions, Scenario
from provision.context import Context, render
from provision.galera_config import CLUSTERCHECK_PORT  # guide ch. 6: what HAProxy's httpchk asks

CONFIG = "/etc/haproxy/haproxy.cfg"
PIDFILE = "/run/haproxy/haproxy.pid"
ADMIN_SOCKET = "/run/haproxy/admin.sock"
LOG = "/var/log/halab/haproxy.log"
# -W: master-worker, so one process to signal; -db: stay in the foreground under start_daemon.
COMMAND = f"/usr/sbin/haproxy -W -db -f {CONFIG}"

# The guide's `listen` names; a service it does not list gets <name>_cluster.
GUIDE_LISTEN = {
    "galera": "galera_cluster",
    "dashboard": "dashboard_cluster",
    "keystone-admin": "keystone_admin_cluster",
    "keystone-public": "keystone_public_internal_cluster",
    "glance-api": "glance_api_cluster",
    "glance-registry": "glance_registry_cluster",
    "nova-ec2-api": "nova_ec2_api_cluster",
    "nova-compute-api": "nova_compute_api_cluster",
    "nova-metadata-api": "nova_metadata_api_cluster",
    "cinder-api": "cinder_api_cluster",
    "ceilometer-api": "ceilometer_api_cluster",
    "spice": "spice_cluster",
    "neutron-api": "neutron_api_cluster",
    "swift-proxy": "swift_proxy_cluster",
}
# The guide's blocks without `option httpchk` (a plain TCP connect check); every other one has it.
NO_HTTPCHK = frozenset({"glance-registry", "nova-ec2-api", "nova-metadata-api", "spice", "swift-proxy"})


@dataclass(frozen=True)
class Server:
    name: str
    address: str
    backup: bool = False


@dataclass(frozen=True)
class Listen:
    name: str
    service: str
    bind: str
    port: int
    httpchk: bool
    tcpka: bool
    tcplog: bool
    check_port: int | None  # `check port N`: health checked on another port than the traffic
    servers: tuple[Server, ...]


def backend_role(service: str) -> str:
    """The role whose nodes serve `service` behind HAProxy: Galera for the database, the API stand-ins else."""
    return "galera" if service == "galera" else "api"


# The guide's `timeout connect 10s` and `timeout server 1m` (templates/haproxy.cfg.j2; a unit test keeps them in step).
CONNECT_TIMEOUT_MS = 10000
SERVER_TIMEOUT_MS = 60000


def silent_down_ms(opts: ClusterOptions) -> int:
    """How long HAProxy takes at most to mark DOWN a server that went silent (crashed, cut off: no RST, each check
    waits out its connect timeout, which is min(inter, timeout connect) when `timeout check` is set): `fall`
    checks, each its timeout plus `inter` to the next, and up to one interval of phase."""
    inter = opts.haproxy_inter_ms
    return opts.haproxy_fall * (inter + min(inter, CONNECT_TIMEOUT_MS)) + inter


def stalled_sessions_ms(scenario: Scenario, opts: ClusterOptions, node: str) -> int:
    """How long a client's open connection through galera_cluster can hang after `node` went silent: when `node`
    is its active server, HAProxy (mode tcp, the guide's settings) keeps each established session to it until
    `timeout server` passes without an answer; marking the server DOWN moves new connections only. A service that
    pools its database connections (Keystone, Glance) waits that long on each one it had open. As a bound on top of
    silent_down_ms: by then the clients' requests reach a live controller, whose first query on a pooled
    connection to the dead server starts the wait; the disconnect it ends with makes SQLAlchemy drop the whole pool
    (measured on a crash of the controller serving the client: 82 s = 22 + 60). With `haproxy_shutdown_sessions`
    (hardened) HAProxy drops the sessions as it marks the server DOWN: no stall past that."""
    if opts.haproxy_shutdown_sessions:
        return 0
    galera = next((li for li in listens(scenario) if li.service == "galera"), None)
    active = [s.name for s in galera.servers if not s.backup] if galera else []
    return SERVER_TIMEOUT_MS if node in active else 0


def listen_name(service: str) -> str:
    return GUIDE_LISTEN.get(service, service.replace("-", "_") + "_cluster")


def listens(scenario: Scenario) -> list[Listen]:
    """One `listen` block per service, servers at their address on the VIP's network, in scenario order."""
    blocks = []
    for name, svc in scenario.services.items():
        vip = scenario.vip_for(name)
        nodes = scenario.nodes_with_role(backend_role(name))
        galera = name == "galera"
        blocks.append(
            Listen(
                name=listen_name(name),
                service=name,
                bind=str(vip.address),
                port=svc.port,
                # Guide ch. 8: galera_cluster has httpchk only; API blocks tcpka + tcplog, httpchk but for a few.
                httpchk=galera or name not in NO_HTTPCHK,
                tcpka=not galera,
                tcplog=not galera,
                check_port=CLUSTERCHECK_PORT if galera else None,
                # Guide ch. 8 note: one Galera writer at a time, the other two are `backup`.
                servers=tuple(
                    Server(n.name, str(n.addresses[vip.network]), backup=galera and i > 0) for i, n in enumerate(nodes)
                ),
            )
        )
    return blocks


def config(ctx: Context) -> str:
    blocks = listens(ctx.scenario)
    return render(
        "haproxy.cfg.j2",
        scenario=ctx.scenario.name,
        profile=ctx.profile,
        opts=ctx.opts,
        listens=blocks,
        vips=sorted({b.bind for b in blocks}),
        pidfile=PIDFILE,
        admin_socket=ADMIN_SOCKET,
    )


def configure_node(ctx: Context, node: str) -> None:
    ctx.provider.put(node, CONFIG, config(ctx))
    # Refuse a config HAProxy would reject now, with its own words, rather than at start.
    ctx.provider.run(node, f"/usr/sbin/haproxy -c -q -f {CONFIG}", check=True, timeout=30)


def start(ctx: Context, node: str) -> None:
    # Per network namespace, and gone after a VM reboot: set at every start. The BACKUP binds the VIP
    # before it holds it (the guide's `bind <Virtual IP>:port`), so a takeover needs no haproxy restart.
    ctx.provider.run(node, "sysctl -q -w net.ipv4.ip_nonlocal_bind=1", check=True, timeout=15)
    ctx.provider.run(node, "mkdir -p /run/haproxy /var/log/halab", check=True, timeout=15)
    ctx.provider.start_daemon(node, COMMAND, LOG)


# Reads the stats socket with the system python: socat is not among the lab's packages.
_SHOW_STAT = (
    "import socket,sys\n"
    "s=socket.socket(socket.AF_UNIX);s.settimeout(5);s.connect(sys.argv[1]);s.sendall(b'show stat\\n')\n"
    "b=b''\n"
    "while (c:=s.recv(65536)):b+=c\n"
    "sys.stdout.write(b.decode())\n"
)


def show_stat(ctx: Context, node: str) -> str:
    """HAProxy's `show stat` CSV from the node's admin socket."""
    cmd = f"/usr/bin/python3 -c {shlex.quote(_SHOW_STAT)} {ADMIN_SOCKET}"
    return ctx.provider.run(node, cmd, check=True, timeout=15).stdout


def parse_stat(text: str) -> dict[tuple[str, str], str]:
    """(listen, server) -> status ("UP", "DOWN", "UP 1/2", "no check", "MAINT", ...), servers only."""
    lines = text.lstrip("# ").splitlines()
    rows = csv.DictReader(ln for ln in lines if ln.strip())
    return {(r["pxname"], r["svname"]): r["status"] for r in rows if r["svname"] not in ("FRONTEND", "BACKEND")}


def server_states(ctx: Context, node: str) -> dict[tuple[str, str], str]:
    return parse_stat(show_stat(ctx, node))


def sessions(text: str, listen: str) -> dict[str, int]:
    """server -> sessions it has taken (`stot`) in `listen`, from `show stat`: which server `balance source` sends
    the lab's client to."""
    rows = csv.DictReader(ln for ln in text.lstrip("# ").splitlines() if ln.strip())
    return {
        r["svname"]: int(r["stot"] or 0)
        for r in rows
        if r["pxname"] == listen and r["svname"] not in ("FRONTEND", "BACKEND")
    }
