"""Role keystone: guide ch. 9's Identity API for real on the controllers: Debian's Keystone (Zed, python3-keystone)
under uwsgi on each controller's own address, behind HAProxy's keystone blocks, its database in Galera through the
VIP, memcached as its cache (the guide's `memcached_servers`), Fernet keys the same on every controller.

Not Debian's `keystone` package's init script and uwsgi ini: they bind every address with 8 x 32 workers and run
under an AppArmor profile; the lab starts one small uwsgi per node itself (README, "Translations")."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from pathlib import Path

from lab import box_inputs
from lab.providers.base import ProviderError
from lab.scenario import Scenario
from lab.wait import WaitTimeout, until
from provision import memcached, pacemaker
from provision.context import Context, script_command

# The scenario services Keystone serves. Zed has one API on both ports: the guide's admin port (35357) is kept
# because its HAProxy block sends there, and the admin endpoint is registered on it.
SERVICES = ("keystone-public", "keystone-admin")
DIR = "/var/lib/halab/keystone"  # /var/lib: private to each node on netns (provision/api.py says why)
CONF = f"{DIR}/keystone.conf"
FERNET_DIR, CREDENTIAL_DIR = f"{DIR}/fernet-keys", f"{DIR}/credential-keys"
LOG = "/var/log/halab/keystone.log"
# Its own system user (as Debian's keystone package makes one), not one it shares: its key repositories and
# keystone.conf are 0600 to it, and another service's user must not read them. Ports above 1024 need no root.
USER = "keystone:keystone"
SERVICE_USERS = box_inputs.SERVICE_USERS  # made by .ci/install-debian-packages and in the libvirt box
DATABASE = DB_USER = "keystone"
ADMIN, PROJECT, DOMAIN, REGION = "admin", "admin", "Default", "RegionOne"
WSGI = "/usr/bin/keystone-wsgi-public"
# Lab-sized: one worker process, a few threads (Debian's ini: 8 x 32). bcrypt at 4 rounds: each password check
# costs ~1 ms instead of ~0.3 s of CPU (12 rounds), which on 2 cores would be the bottleneck of the token client.
PROCESSES, THREADS, HASH_ROUNDS = 1, 4, 4
TOKEN_TIMEOUT_S = 5.0  # one token request from the harness (provisioning's wait, the tests' checks)


def enabled(scenario: Scenario) -> bool:
    return any(s in scenario.services for s in SERVICES)


def ports(scenario: Scenario) -> dict[str, int]:
    return {s: scenario.services[s].port for s in SERVICES if s in scenario.services}


def nodes(scenario: Scenario) -> list[str]:
    """Keystone runs where HAProxy sends its blocks: the `api` nodes (provision/haproxy.backend_role)."""
    return [n.name for n in scenario.nodes_with_role("api")]


def _vip(scenario: Scenario) -> tuple[str, str]:
    """(address, network) of the VIP Keystone's services sit behind."""
    vip = scenario.vips[scenario.services[next(iter(ports(scenario)))].vip]
    return str(vip.address), vip.network


def under_pacemaker(scenario: Scenario) -> bool:
    """Guide ch. 4: Keystone is a resource of a Pacemaker group and binds the VIP the group holds; ch. 9: it runs
    on every controller, on the controller's own address, behind HAProxy."""
    return scenario.services[next(iter(ports(scenario)))].group is not None


def node_address(scenario: Scenario, node: str) -> str:
    """Where Keystone listens on `node`: the VIP under Pacemaker (the guide's `bind_host` = the API VIP), else
    the node's address on the VIP's network."""
    if under_pacemaker(scenario):
        return _vip(scenario)[0]
    return str(scenario.nodes[node].addresses[_vip(scenario)[1]])


def database(scenario: Scenario) -> str:
    """The services' database URL's host:port: Galera's VIP (ch. 9), or ch. 3's MySQL VIP (ch. 4)."""
    name = "galera" if "galera" in scenario.services else "mysql"
    return f"{scenario.vip_for(name).address}:{scenario.services[name].port}"


def url(scenario: Scenario, service: str = "keystone-public") -> str:
    """The endpoint registered in the catalog for `service`: at the VIP, as the guide registers them."""
    return f"http://{_vip(scenario)[0]}:{scenario.services[service].port}/v3/"


def auth_url(scenario: Scenario) -> str:
    return url(scenario, "keystone-public" if "keystone-public" in scenario.services else SERVICES[1])


def settings(ctx: Context) -> str:
    """keystone.conf for every controller (the same on each; carries the database password: written 0600)."""
    sc = ctx.scenario
    db = f"mysql+pymysql://{DB_USER}:{ctx.secrets.keystone_db_password}@{database(sc)}"
    caches = memcached.client_servers(sc)
    # guide ch. 9: the services cache in every controller's memcached. ch. 4 has none: each process caches in its own
    # memory (measured without a cache: one token took 500-700 ms of CPU on the lone active API node, and its
    # monitor's token timed out under the workload)
    cache = ["enabled = true", "backend = oslo_cache.memcache_pool", f"memcache_servers = {','.join(caches)}"]
    # A memory cache is each uwsgi worker's own: the catalog, which provisioning changes after Keystone starts
    # (Glance's endpoints), is not cached there (a worker that had cached it issued tokens without Glance in them)
    if not caches:
        cache = ["enabled = true", "backend = dogpile.cache.memory", "[catalog]", "caching = false"]
    return "\n".join(
        [
            "[DEFAULT]",
            "debug = false",
            "[database]",
            f"connection = {db}/{DATABASE}",
            "[cache]",
            *cache,
            "[token]",
            "provider = fernet",
            "[fernet_tokens]",
            f"key_repository = {FERNET_DIR}",
            f"max_active_keys = {len(ctx.secrets.fernet_keys)}",
            "[fernet_receipts]",  # MFA receipts: the same keys (their default repository is /etc/keystone's)
            f"key_repository = {FERNET_DIR}",
            f"max_active_keys = {len(ctx.secrets.fernet_keys)}",
            "[credential]",
            f"key_repository = {CREDENTIAL_DIR}",
            "[identity]",
            f"password_hash_rounds = {HASH_ROUNDS}",
            "",
        ]
    )


def database_sql(database: str, user: str, password: str) -> str:
    """A service's database and its user in Galera (Keystone's, Glance's): run once, over the root socket."""
    return (
        f"CREATE DATABASE IF NOT EXISTS {database};\n"
        f"CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY '{password}';\n"
        f"GRANT ALL PRIVILEGES ON {database}.* TO '{user}'@'%';\n"
    )


def create_database(ctx: Context, node: str, database: str, user: str, password: str) -> None:
    ctx.provider.run(node, "mysql --protocol=socket -uroot", input=database_sql(database, user, password).encode(),
                     check=True, timeout=30)  # fmt: skip


def require_user(ctx: Context, node: str, user: str) -> None:
    """One clear error where the service's system user is missing (a host not set up by the lab's installer)."""
    if not ctx.provider.run(node, f"id -u {user} >/dev/null 2>&1", timeout=10).ok:
        raise ProviderError(
            f"{node}: no system user {user!r}: run `bash .ci/install-debian-packages` (it adds "
            f"{', '.join(SERVICE_USERS)} as Debian's own packages would), or `useradd --system --user-group {user}`"
        )


def configure_node(ctx: Context, node: str) -> None:
    p = ctx.provider
    require_user(ctx, node, USER.split(":")[0])
    p.run(node, f"mkdir -p {FERNET_DIR} {CREDENTIAL_DIR} /var/log/halab && chmod 755 /var/lib/halab", check=True)
    p.put(node, CONF, settings(ctx), mode=0o600, owner=USER)
    for repo, keys in ((FERNET_DIR, ctx.secrets.fernet_keys), (CREDENTIAL_DIR, ctx.secrets.credential_keys)):
        for i, key in enumerate(keys):
            p.put(node, f"{repo}/{i}", key, mode=0o600, owner=USER)
    p.run(node, f"chown -R {USER} {DIR} && chmod 700 {DIR} {FERNET_DIR} {CREDENTIAL_DIR}", check=True)


def command(ctx: Context, node: str) -> str:
    """uwsgi's http-socket closes each connection after its answer without saying so: `Connection: close` says it
    (as Debian's own uwsgi inis do), or a client that reuses connections (keystoneauth's session, behind HAProxy's
    TCP mode) has its next request cut off (RemoteDisconnected, seen registering Glance)."""
    user, group = USER.split(":")
    addr = node_address(ctx.scenario, node)
    sockets = " ".join(f"--http-socket {addr}:{port}" for port in ports(ctx.scenario).values())
    return (
        f"setpriv --reuid={user} --regid={group} --clear-groups env OS_KEYSTONE_CONFIG_FILES={CONF} "
        f"/usr/bin/uwsgi --plugin python3 {sockets} --wsgi-file {WSGI} --master --processes {PROCESSES} "
        f"--threads {THREADS} --die-on-term --no-orphans --lazy-apps --need-app --add-header 'Connection: close'"
    )


def start(ctx: Context, node: str) -> None:
    ctx.provider.start_daemon(node, command(ctx, node), LOG)


def running(ctx: Context, node: str) -> bool:
    # [k]: the pattern must not match the shell that runs pgrep (its command line holds the pattern too)
    return ctx.provider.run(node, "pgrep -f '[k]eystone-wsgi-public' >/dev/null", timeout=10).ok


def initialise(ctx: Context, node: str, db_node: str | None = None) -> float:
    """The schema and the admin, project, roles, region and endpoints, once, from one controller through the VIP
    (Galera replicates them); returns how long it took in seconds. The database is made over the root socket of
    `db_node` (default `node`: a Galera controller). The admin's password goes in on stdin, never on a command
    line."""
    t0 = time.monotonic()
    p = ctx.provider
    create_database(ctx, db_node or node, DATABASE, DB_USER, ctx.secrets.keystone_db_password)
    manage = f"keystone-manage --config-file {CONF}"
    p.run(node, f"{manage} db_sync", check=True, timeout=pacemaker.emulated_s(ctx, 600))
    sc = ctx.scenario
    admin = url(sc, "keystone-admin") if "keystone-admin" in sc.services else auth_url(sc)
    boot = (
        f"read -r OS_BOOTSTRAP_PASSWORD && export OS_BOOTSTRAP_PASSWORD && {manage} bootstrap "
        f"--bootstrap-username {ADMIN} --bootstrap-project-name {PROJECT} --bootstrap-region-id {REGION} "
        f"--bootstrap-admin-url {admin} --bootstrap-internal-url {auth_url(sc)} --bootstrap-public-url {auth_url(sc)}"
    )
    p.run(node, boot, input=(ctx.secrets.keystone_admin_password + "\n").encode(), check=True,
          timeout=pacemaker.emulated_s(ctx, 300))  # fmt: skip
    return time.monotonic() - t0


PROBE_SOURCE = Path(__file__).resolve().parent / "files" / "os_probe.py"
REGISTER_SOURCE = PROBE_SOURCE.with_name("keystone_register.py")


def authtoken_section(scenario: Scenario, user: str, password: str, caches: list[str]) -> list[str]:
    """A service's [keystone_authtoken] lines: keystonemiddleware checks tokens against Keystone at the VIP, as the
    service's own user in the `service` project, caching them in `caches` (memcached servers) if any."""
    identity = auth_url(scenario)
    return [
        "[keystone_authtoken]",
        f"www_authenticate_uri = {identity}",
        f"auth_url = {identity}",
        *([f"memcached_servers = {','.join(caches)}"] if caches else []),
        "auth_type = password",
        f"project_domain_name = {DOMAIN}",
        f"user_domain_name = {DOMAIN}",
        "project_name = service",
        f"username = {user}",
        f"password = {password}",
    ]


def register_service(
    ctx: Context, node: str, workdir: str, service: tuple[str, str, str], user: str, password: str
) -> None:
    """A service's user, its (name, type, URL) and its endpoints in Keystone, which must answer at its VIP, from
    `node` (provision/files/keystone_register.py, copied into `workdir`); the passwords go in on stdin."""
    p = ctx.provider
    script = f"{workdir}/keystone_register.py"
    p.put(node, script, REGISTER_SOURCE.read_text(), mode=0o644)
    args = [auth_url(ctx.scenario), REGION, *service, user]
    secrets = f"{ctx.secrets.keystone_admin_password}\n{password}\n"
    p.run(node, f"python3 {script} {' '.join(shlex.quote(a) for a in args)}", input=secrets.encode(), check=True,
          timeout=pacemaker.emulated_s(ctx, 120))  # fmt: skip


def probe(ctx: Context, node: str, *args: str, stdin: str, timeout: float = TOKEN_TIMEOUT_S) -> str:
    """What `node` gets asking one OpenStack API question (provision/files/os_probe.py's modes: token, validate,
    images): an HTTP status, or "error …". `stdin`: the password or token it needs."""
    r = ctx.provider.run(
        node,
        script_command(PROBE_SOURCE, *args),
        input=(stdin + "\n").encode(),
        timeout=2 * timeout + 10,  # the images question asks twice (a token, then the list)
    )
    return r.stdout.strip() or f"error (exit {r.rc}): {r.stderr.strip()[-200:]}"


def token_status(ctx: Context, node: str, base_url: str) -> str:
    """What `node` gets asking `base_url` for the admin's token: "201", another status, or "error …"."""
    pw = ctx.secrets.keystone_admin_password
    return probe(ctx, node, "token", base_url, ADMIN, PROJECT, DOMAIN, str(TOKEN_TIMEOUT_S), stdin=pw)


def node_url(scenario: Scenario, node: str) -> str:
    """One controller's own Keystone, not through HAProxy."""
    port = next(iter(ports(scenario).values()))
    return f"http://{node_address(scenario, node)}:{port}/v3/"


def await_answers(
    targets: dict[str, str],
    ask: Callable[[str], str],
    ok: str,
    running: Callable[[str], bool],
    daemon: tuple[str, str],
    timeout: float,
) -> None:
    """Until `ask(url)` answers `ok` for every target ({node or "vip": url}); a node where `running` says the
    daemon (name, log) is gone on two polls in a row fails the wait at once, naming it: one miss alone can be a
    glimpse of a process mid-exec (seen: pgrep found no uwsgi the instant after its start, then a running one). A
    target that answered is not asked again."""
    seen: dict[str, str] = {}
    missed: dict[str, int] = {}

    def answered() -> bool:
        for name, where in targets.items():
            if seen.get(name) == ok:
                continue
            seen[name] = ask(where)
            if seen[name] == ok:
                continue
            if name != "vip":
                missed[name] = 0 if running(name) else missed.get(name, 0) + 1
                if missed[name] >= 2:  # no sense waiting on: say why at once
                    raise WaitTimeout(f"{daemon[0]} is not running on {name}: see {daemon[1]} there")
            return False
        return True

    until(answered, timeout=timeout, interval=0.5, what=f"{ok} from {daemon[0]} at each of {list(targets)}",
          seen=lambda: json.dumps(seen))  # fmt: skip


def await_tokens(ctx: Context, client: str, timeout: float) -> None:
    """Until the client node gets a token from every controller's own Keystone (each has loaded its app: a worker
    still loading makes HAProxy's answer an aborted connection), then through the VIP (HAProxy has seen them UP)."""
    targets = {n: node_url(ctx.scenario, n) for n in nodes(ctx.scenario)} | {"vip": auth_url(ctx.scenario)}
    await_answers(targets, lambda where: token_status(ctx, client, where), "201", lambda n: running(ctx, n),
                  ("keystone's uwsgi", LOG), timeout)  # fmt: skip
