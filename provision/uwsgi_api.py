"""What ch. 4's APIs under uwsgi share (provision/cinder.py, neutron.py): each runs in g_services_api on the API VIP
(the guide's bind address) as its own system user, from a directory of its own holding its configuration (0600),
Zed's api-paste.ini (Debian ships it in the service's -common package, which the lab does not install: it wants
dbconfig-common) and the WSGI file Debian's package would install; uwsgi runs it through a link named after the
service, so that a fault on one uwsgi (lab/fault_vocabulary.py finds processes by name) leaves the others alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lab.scenario import Scenario
from provision import keystone, logs, pacemaker
from provision.context import Context

FILES = Path(__file__).resolve().parent / "files"
# One worker: lab-sized (Debian's uwsgi inis run 8 x 16)
PROCESSES = 1


@dataclass(frozen=True)
class UwsgiApi:
    service: str  # the scenario's service ("cinder-api")
    name: str  # its system user and group, database, database user and Keystone user ("cinder"); its secrets are
    # <name>_db_password and <name>_service_password (provision/secrets.py)
    process: str  # uwsgi's link's name, the process name faults find it by
    conf_name: str  # its configuration file's name
    paste: str  # its api-paste.ini in provision/files
    wsgi_source: str  # the WSGI file: the app, its configuration file passed on by uwsgi's --pyargv
    log: str  # provision/logs.py's entry
    manage: str  # python3 -c source of its database tool, then `manage_args`
    manage_args: str  # what makes the schema, after --config-file
    catalog: tuple[str, str, str]  # (service name, type, path below its root) registered in Keystone
    ask: str  # os_probe.py's question whose 200 means it serves: its monitor's and the provisioning's wait
    threads: int = 2  # the monitor and a client at once

    @property
    def user(self) -> str:
        return f"{self.name}:{self.name}"

    @property
    def dir(self) -> str:
        return f"/var/lib/halab/{self.name}"

    @property
    def conf(self) -> str:
        return f"{self.dir}/{self.conf_name}"

    @property
    def paste_path(self) -> str:
        return f"{self.dir}/api-paste.ini"

    @property
    def wsgi(self) -> str:
        return f"{self.dir}/{self.process}-wsgi"

    @property
    def binary(self) -> str:
        return f"{self.dir}/{self.process}"

    @property
    def log_file(self) -> str:
        return logs.LOGS[self.log]


def enabled(api: UwsgiApi, scenario: Scenario) -> bool:
    """The API needs Keystone and, here, a Pacemaker group of ch. 4's to run in: in ch. 9's active/active topology
    its port stays the API stand-in's (README, "Translations")."""
    svc = scenario.services.get(api.service)
    return svc is not None and svc.group is not None and keystone.enabled(scenario)


def address(api: UwsgiApi, scenario: Scenario) -> str:
    return str(scenario.vip_for(api.service).address)


def url(api: UwsgiApi, scenario: Scenario) -> str:
    """The service's root at the VIP (its version document)."""
    return f"http://{address(api, scenario)}:{scenario.services[api.service].port}/"


def endpoint(api: UwsgiApi, scenario: Scenario) -> str:
    """The endpoint registered in the catalog, at the VIP as the guide registers them."""
    return url(api, scenario) + api.catalog[2]


def listen(api: UwsgiApi, scenario: Scenario) -> str:
    return f"{address(api, scenario)}:{scenario.services[api.service].port}"


def transport_url(ctx: Context) -> str:
    """ch. 3's RabbitMQ at its VIP, as the lab's own user (provision/rabbitmq.py makes it)."""
    sc = ctx.scenario
    rabbit = sc.vip_for("rabbitmq").address
    return f"rabbit://halab:{ctx.secrets.rabbitmq_password}@{rabbit}:{sc.services['rabbitmq'].port}/"


def passwords(api: UwsgiApi, ctx: Context) -> tuple[str, str]:
    """(its database user's, its Keystone user's)"""
    return getattr(ctx.secrets, f"{api.name}_db_password"), getattr(ctx.secrets, f"{api.name}_service_password")


def common_settings(api: UwsgiApi, ctx: Context) -> list[str]:
    """The lines every one of these APIs' configuration has, after its own [DEFAULT] lines: where its paste file,
    state and RPC are, its database in ch. 3's MySQL, keystonemiddleware against Keystone at the VIP."""
    db_password, service_password = passwords(api, ctx)
    database = f"mysql+pymysql://{api.name}:{db_password}@{keystone.database(ctx.scenario)}/{api.name}"
    return [
        "auth_strategy = keystone",
        f"api_paste_config = {api.paste_path}",
        f"state_path = {api.dir}",
        f"transport_url = {transport_url(ctx)}",
        "[database]",
        f"connection = {database}",
        *keystone.authtoken_section(ctx.scenario, api.name, service_password, []),
        "[oslo_concurrency]",
        f"lock_path = {api.dir}/lock",
    ]


def configure_node(api: UwsgiApi, ctx: Context, node: str, settings: str) -> None:
    p = ctx.provider
    keystone.require_user(ctx, node, api.name)
    p.run(node, f"mkdir -p {api.dir}/lock /var/log/halab && chmod 755 /var/lib/halab", check=True, timeout=15)
    p.put(node, api.conf, settings, mode=0o600, owner=api.user)
    p.put(node, api.paste_path, (FILES / api.paste).read_text(), mode=0o644)
    p.put(node, api.wsgi, api.wsgi_source, mode=0o644)
    p.run(node, f"ln -sfn /usr/bin/uwsgi {api.binary} && chown -R {api.user} {api.dir} && chmod 700 {api.dir}",
          check=True, timeout=15)  # fmt: skip


def create_schema(api: UwsgiApi, ctx: Context, node: str, db_node: str) -> None:
    """The service's database (over `db_node`'s root socket) and its schema, from `node`, as the service's user,
    from / (its own directory is 0700 to it)."""
    keystone.create_database(ctx, db_node, api.name, api.name, passwords(api, ctx)[0])
    ctx.provider.run(node, f"cd / && setpriv --reuid={api.name} --regid={api.name} --clear-groups python3 -c "
                     f"'{api.manage}' --config-file {api.conf} {api.manage_args}", check=True,
                     timeout=pacemaker.emulated_s(ctx, 600))  # fmt: skip


def register(api: UwsgiApi, ctx: Context, node: str) -> None:
    """Its Keystone user, its service and endpoints (Keystone answering at its VIP)."""
    name, kind, _path = api.catalog
    keystone.register_service(ctx, node, api.dir, (name, kind, endpoint(api, ctx.scenario)), api.name,
                              passwords(api, ctx)[1])  # fmt: skip


def status(api: UwsgiApi, ctx: Context, node: str) -> str:
    """What `node` gets asking the API at the VIP its list question (os_probe.py's `api.ask`) with a fresh admin
    token: "200", or what failed."""
    sc = ctx.scenario
    args = (api.ask, keystone.auth_url(sc), url(api, sc), keystone.ADMIN, keystone.PROJECT, keystone.DOMAIN,
            str(keystone.TOKEN_TIMEOUT_S))  # fmt: skip
    return keystone.probe(ctx, node, *args, stdin=ctx.secrets.keystone_admin_password)


def agent_params(api: UwsgiApi, ctx: Context) -> dict[str, str]:
    """The OCF agent's parameters but those every lab agent has (provision/ocf_agents.py adds them)."""
    return {
        "config": api.conf,
        "wsgi": api.wsgi,
        "binary": api.binary,
        "listen": listen(api, ctx.scenario),
        "url": url(api, ctx.scenario),
        "processes": str(PROCESSES),
        "threads": str(api.threads),
        "user": api.name,
        "group": api.name,
        "log": api.log_file,
    }
