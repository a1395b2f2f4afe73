"""Role glance: guide ch. 9's Image API for real on the controllers: Debian's Glance (Zed, python3-glance) on each
controller's own address, behind HAProxy's glance_api_cluster, its database in Galera through the VIP, tokens
checked by keystonemiddleware against Keystone through the VIP (cached in every memcached), and its file store in
one directory every controller shares (the provider's shared directory: what NFS, Ceph or Swift is to a real
cloud), so an image uploaded through one controller downloads through any other and outlives any one of them.

Not Debian's glance-api package: its glance-common wants dbconfig-common and its uwsgi ini runs 8 x 32 workers;
the lab starts Glance's own eventlet server, one process (README, "Translations")."""

from __future__ import annotations

import time
from pathlib import Path

from lab.scenario import Scenario
from provision import keystone, memcached, pacemaker
from provision.context import Context

SERVICE = "glance-api"  # the scenario service Glance serves (glance-registry is gone since Queens: a stand-in's)
SERVICES = (SERVICE,)
FILES = Path(__file__).resolve().parent / "files"
DIR = "/var/lib/halab/glance"  # private to each node on netns (provision/api.py says why)
CONF, PASTE, PROGRAM = f"{DIR}/glance-api.conf", f"{DIR}/glance-api-paste.ini", f"{DIR}/glance-api"
LOG = "/var/log/halab/glance-api.log"
USER = "glance:glance"  # its own system user (provision/keystone.py says why)
DATABASE = DB_USER = SERVICE_USER = "glance"
SHARED = "glance-images"  # the provider's shared directory the file store lives in
PROCESS = "glance-api"  # the launcher's name (provision/files/glance-api): what kill_service looks for


def enabled(scenario: Scenario) -> bool:
    """Glance needs Keystone: without it, its port stays the stand-in's."""
    return SERVICE in scenario.services and keystone.enabled(scenario)


def nodes(scenario: Scenario) -> list[str]:
    return keystone.nodes(scenario)  # the `api` nodes HAProxy sends its blocks to


def _address(scenario: Scenario, node: str) -> str:
    """Where Glance listens on `node`: the VIP its group holds under Pacemaker (ch. 4's `bind_host`), else the
    node's own address behind HAProxy (ch. 9)."""
    vip = scenario.vip_for(SERVICE)
    if scenario.services[SERVICE].group is not None:
        return str(vip.address)
    return str(scenario.nodes[node].addresses[vip.network])


def url(scenario: Scenario) -> str:
    """The endpoint registered in the catalog: at the VIP, as the guide registers it."""
    return f"http://{scenario.vip_for(SERVICE).address}:{scenario.services[SERVICE].port}/"


def node_url(scenario: Scenario, node: str) -> str:
    """One controller's own Glance, not through HAProxy."""
    return f"http://{_address(scenario, node)}:{scenario.services[SERVICE].port}/"


def settings(ctx: Context, node: str, store: str) -> str:
    """glance-api.conf for `node` (carries two passwords: written 0600)."""
    sc = ctx.scenario
    db = f"mysql+pymysql://{DB_USER}:{ctx.secrets.glance_db_password}@{keystone.database(sc)}"
    caches = memcached.client_servers(sc)
    return "\n".join(
        [
            "[DEFAULT]",
            f"bind_host = {_address(sc, node)}",
            f"bind_port = {sc.services[SERVICE].port}",
            "workers = 0",  # one process serving every request in green threads: lab-sized
            "enabled_backends = shared:file",
            "[database]",
            f"connection = {db}/{DATABASE}",
            *keystone.authtoken_section(sc, SERVICE_USER, ctx.secrets.glance_service_password, caches),
            "[paste_deploy]",
            "flavor = keystone",
            f"config_file = {PASTE}",
            "[glance_store]",
            "default_backend = shared",
            "[shared]",
            f"filesystem_store_datadir = {store}",
            "[os_glance_staging_store]",  # interoperable import's stores: per node, unused by a direct upload
            f"filesystem_store_datadir = {DIR}/staging",
            "[os_glance_tasks_store]",
            f"filesystem_store_datadir = {DIR}/tasks",
            "[oslo_concurrency]",
            f"lock_path = {DIR}/lock",
            "",
        ]
    )


def store(ctx: Context) -> str:
    """The shared file store, made once for the lab (the provider's; it survives any node)."""
    return ctx.provider.shared_directory(SHARED)


def configure_node(ctx: Context, node: str, store_dir: str) -> None:
    p = ctx.provider
    keystone.require_user(ctx, node, USER.split(":")[0])
    p.run(node, f"mkdir -p {DIR}/staging {DIR}/tasks {DIR}/lock /var/log/halab && chmod 755 /var/lib/halab",
          check=True, timeout=15)  # fmt: skip
    p.put(node, CONF, settings(ctx, node, store_dir), mode=0o600, owner=USER)
    p.put(node, PASTE, (FILES / "glance-api-paste.ini").read_text(), mode=0o644)
    p.put(node, PROGRAM, (FILES / "glance-api").read_text(), mode=0o755)
    p.run(node, f"chown -R {USER} {DIR} {store_dir} && chmod 700 {DIR}", check=True, timeout=15)


def command() -> str:
    user, group = USER.split(":")
    return f"setpriv --reuid={user} --regid={group} --clear-groups {PROGRAM} --config-file {CONF}"


def start(ctx: Context, node: str) -> None:
    ctx.provider.start_daemon(node, command(), LOG)


def running(ctx: Context, node: str) -> bool:
    return ctx.provider.run(node, f"pgrep -x {PROCESS} >/dev/null", timeout=10).ok


def initialise(ctx: Context, node: str) -> float:
    """The database and its schema, and Glance's user, service and endpoints in Keystone, once, from one
    controller (Galera replicates them); returns how long it took in seconds. Passwords go in on stdin."""
    t0 = time.monotonic()
    create_schema(ctx, node)
    register(ctx, node)
    return time.monotonic() - t0


def create_schema(ctx: Context, node: str, db_node: str | None = None) -> None:
    """Glance's database (over `db_node`'s root socket, default `node`'s) and its schema, from `node`."""
    keystone.create_database(ctx, db_node or node, DATABASE, DB_USER, ctx.secrets.glance_db_password)
    manage = "python3 -c 'import sys; from glance.cmd.manage import main; sys.exit(main())'"
    user, group = USER.split(":")
    ctx.provider.run(node, f"setpriv --reuid={user} --regid={group} --clear-groups {manage} --config-file {CONF} "
                     "db_sync", check=True, timeout=pacemaker.emulated_s(ctx, 600))  # fmt: skip


def register(ctx: Context, node: str) -> None:
    """Glance's service user, service and endpoints in Keystone (it must answer at its VIP), from `node`."""
    keystone.register_service(ctx, node, DIR, ("glance", "image", url(ctx.scenario)), SERVICE_USER,
                              ctx.secrets.glance_service_password)  # fmt: skip


def images_status(ctx: Context, node: str, glance_url: str) -> str:
    """What `node` gets asking `glance_url` for the image list with a fresh admin token: "200", or what failed."""
    sc = ctx.scenario
    args = ("images", keystone.auth_url(sc), glance_url, keystone.ADMIN, keystone.PROJECT, keystone.DOMAIN,
            str(keystone.TOKEN_TIMEOUT_S))  # fmt: skip
    return keystone.probe(ctx, node, *args, stdin=ctx.secrets.keystone_admin_password)


def await_images(ctx: Context, client: str, timeout: float) -> None:
    """Until the client node gets the image list from every controller's own Glance, then through the VIP."""
    targets = {n: node_url(ctx.scenario, n) for n in nodes(ctx.scenario)} | {"vip": url(ctx.scenario)}
    keystone.await_answers(targets, lambda where: images_status(ctx, client, where), "200",
                           lambda n: running(ctx, n), (PROCESS, LOG), timeout)  # fmt: skip
