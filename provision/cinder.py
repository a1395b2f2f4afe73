"""Role cinder: guide ch. 4's `p_cinder-api` for real: Debian's Cinder API (Zed, python3-cinder) under uwsgi, bound
to the API VIP as the guide writes it (`osapi_volume_listen`), its database in ch. 3's MySQL through its VIP,
tokens checked by keystonemiddleware against Keystone at the VIP, RPC to ch. 3's RabbitMQ VIP (the guide's
`rabbit_host`; the API only casts there when a volume is created: no scheduler or volume service runs here).

Built where the scenario puts `cinder-api` in a Pacemaker group (ch. 4); in ch. 9's active/active topology the
port stays the API stand-in's (README, "Translations"). Not Debian's cinder-api package: its cinder-common wants
dbconfig-common, as glance-common does (provision/glance.py); the lab brings Zed's api-paste.ini itself."""

from __future__ import annotations

from pathlib import Path

from lab.scenario import Scenario
from provision import keystone, logs
from provision.context import Context

SERVICE = "cinder-api"
FILES = Path(__file__).resolve().parent / "files"
DIR = "/var/lib/halab/cinder"
CONF, PASTE, WSGI = f"{DIR}/cinder.conf", f"{DIR}/api-paste.ini", f"{DIR}/cinder-wsgi"
# uwsgi under Cinder's name (a link to it): the process is then named cinder-api, and a fault on Keystone's uwsgi
# (lab/fault_vocabulary.py finds processes by name) leaves Cinder's alone, and the other way round
PROCESS = "cinder-api"
BINARY = f"{DIR}/{PROCESS}"
LOG = logs.LOGS["cinder"]
USER = "cinder:cinder"  # its own system user (provision/keystone.py says why)
DATABASE = DB_USER = SERVICE_USER = "cinder"
# One worker, two threads: lab-sized (Debian's uwsgi ini runs 8 x 16); the monitor and a client at once.
PROCESSES, THREADS = 1, 2
# The WSGI file Debian's cinder-api package installs as /usr/bin/cinder-wsgi, the config file passed on
# (uwsgi's --pyargv): initialize_application parses sys.argv.
WSGI_SOURCE = "from cinder.wsgi.wsgi import initialize_application\napplication = initialize_application()\n"


def enabled(scenario: Scenario) -> bool:
    """Cinder needs Keystone and, here, a Pacemaker group of ch. 4's to run in."""
    svc = scenario.services.get(SERVICE)
    return svc is not None and svc.group is not None and keystone.enabled(scenario)


def address(scenario: Scenario) -> str:
    return str(scenario.vip_for(SERVICE).address)


def url(scenario: Scenario) -> str:
    """Cinder's root at the VIP: its version list, and v3/ below it."""
    return f"http://{address(scenario)}:{scenario.services[SERVICE].port}/"


def endpoint(scenario: Scenario) -> str:
    """The endpoint registered in the catalog (volumev3), as the install guide registers it."""
    return url(scenario) + "v3/%(project_id)s"


def listen(scenario: Scenario) -> str:
    return f"{address(scenario)}:{scenario.services[SERVICE].port}"


def transport_url(ctx: Context) -> str:
    """ch. 3's RabbitMQ at its VIP, as the lab's own user (provision/rabbitmq.py makes it)."""
    sc = ctx.scenario
    rabbit = sc.vip_for("rabbitmq").address
    return f"rabbit://halab:{ctx.secrets.rabbitmq_password}@{rabbit}:{sc.services['rabbitmq'].port}/"


def settings(ctx: Context) -> str:
    """cinder.conf (carries three passwords: written 0600)."""
    sc = ctx.scenario
    return "\n".join(
        [
            "[DEFAULT]",
            f"osapi_volume_listen = {address(sc)}",  # guide ch. 4: bound to the API VIP
            f"osapi_volume_listen_port = {sc.services[SERVICE].port}",
            "auth_strategy = keystone",
            f"api_paste_config = {PASTE}",
            f"state_path = {DIR}",
            f"transport_url = {transport_url(ctx)}",
            "[database]",
            f"connection = mysql+pymysql://{DB_USER}:{ctx.secrets.cinder_db_password}@{keystone.database(sc)}/"
            f"{DATABASE}",
            *keystone.authtoken_section(sc, SERVICE_USER, ctx.secrets.cinder_service_password, []),
            "[oslo_concurrency]",
            f"lock_path = {DIR}/lock",
            "",
        ]
    )


def configure_node(ctx: Context, node: str) -> None:
    p = ctx.provider
    keystone.require_user(ctx, node, USER.split(":")[0])
    p.run(node, f"mkdir -p {DIR}/lock /var/log/halab && chmod 755 /var/lib/halab", check=True, timeout=15)
    p.put(node, CONF, settings(ctx), mode=0o600, owner=USER)
    p.put(node, PASTE, (FILES / "cinder-api-paste.ini").read_text(), mode=0o644)
    p.put(node, WSGI, WSGI_SOURCE, mode=0o644)
    p.run(node, f"ln -sfn /usr/bin/uwsgi {BINARY} && chown -R {USER} {DIR} && chmod 700 {DIR}", check=True,
          timeout=15)  # fmt: skip


def create_schema(ctx: Context, node: str, db_node: str) -> None:
    """Cinder's database (over `db_node`'s root socket) and its schema, from `node`, as its user."""
    keystone.create_database(ctx, db_node, DATABASE, DB_USER, ctx.secrets.cinder_db_password)
    manage = "python3 -c 'import sys; from cinder.cmd.manage import main; sys.exit(main())'"
    user, group = USER.split(":")
    ctx.provider.run(node, f"cd / && setpriv --reuid={user} --regid={group} --clear-groups {manage} "
                     f"--config-file {CONF} db sync", check=True, timeout=600)  # fmt: skip


def register(ctx: Context, node: str) -> None:
    """Cinder's service user, the volumev3 service and its endpoints in Keystone (answering at its VIP)."""
    keystone.register_service(ctx, node, DIR, ("cinderv3", "volumev3", endpoint(ctx.scenario)), SERVICE_USER,
                              ctx.secrets.cinder_service_password)  # fmt: skip


def volumes_status(ctx: Context, node: str) -> str:
    """What `node` gets asking Cinder at the VIP for the admin project's volumes with a fresh token: "200", or
    what failed (provision/files/os_probe.py's `volumes`)."""
    sc = ctx.scenario
    args = ("volumes", keystone.auth_url(sc), url(sc), keystone.ADMIN, keystone.PROJECT, keystone.DOMAIN,
            str(keystone.TOKEN_TIMEOUT_S))  # fmt: skip
    return keystone.probe(ctx, node, *args, stdin=ctx.secrets.keystone_admin_password)
