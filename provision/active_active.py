"""Guide ch. 6-9 end to end: Galera on the controllers (with clustercheck), a RabbitMQ cluster, memcached,
API stand-ins on every controller, HAProxy on the front nodes and keepalived holding the VIP."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from lab import progress
from lab.checks.base import Check
from lab.floors import Floor
from lab.history import History
from lab.scenario import Scenario
from lab.wait import until
from lab.workload.config import Endpoint, WorkloadConfig
from provision import api, galera, glance, haproxy, keepalived, keystone, memcached, rabbitmq_cluster
from provision.context import Context

HONOURS_LAB_SERVICES = False  # every service of the chapter runs together
VIP_HANDOVER_SAMPLES = 1  # VRRP: the new MASTER adds the VIP before the old one drops it
PACKAGES = [
    "mariadb-server", "galera-4", "rabbitmq-server", "haproxy", "keepalived", "memcached",
    "python3-keystone", "uwsgi-plugin-python3", "python3-glance",
]  # fmt: skip
# the history's services of the Keystone client: tokens issued, and the run's first token validated
TOKENS, VALIDATE = "keystone", "keystone-validate"
IMAGES = "glance"  # the Glance client: the image uploaded before the fault, listed and downloaded


def role_nodes(ctx: Context, role: str) -> list[str]:
    return [n.name for n in ctx.scenario.nodes_with_role(role)]


def vip_name(ctx: Context) -> str:
    """The scenario's VRRP VIP: the one its services sit behind (whatever the scenario calls it)."""
    return next(iter(ctx.scenario.services.values())).vip


def vip_address(ctx: Context) -> str:
    return str(ctx.scenario.vips[vip_name(ctx)].address)


def _parallel(fn: Callable[[str], object], nodes: list[str]) -> None:
    if nodes:
        with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
            list(pool.map(fn, nodes))


class _Role(Protocol):
    """A role module that writes a node's configuration, then starts its daemon (api, haproxy, keepalived)."""

    def configure_node(self, ctx: Context, node: str) -> None: ...
    def start(self, ctx: Context, node: str) -> None: ...


def _configure_and_start(ctx: Context, role: _Role, nodes: list[str]) -> None:
    """On every node at once: configure, then start, the node's part of `role`."""

    def one(node: str) -> None:
        role.configure_node(ctx, node)
        role.start(ctx, node)

    _parallel(one, nodes)


def converge(ctx: Context) -> None:
    # the role boundaries below are what `halab provision` shows as it goes (lab/progress.py)
    controllers = role_nodes(ctx, "galera")
    # Galera and RabbitMQ bootstrap independently; overlapping them halves the wait.
    progress.note(f"galera + rabbitmq cluster on {', '.join(controllers)}")
    with ThreadPoolExecutor(max_workers=2) as pool:
        db = pool.submit(galera.bootstrap, ctx)
        mq = pool.submit(rabbitmq_cluster.converge, ctx)
        db.result()
        mq.result()
    progress.note("clustercheck, memcached, API stand-ins")
    ctx.provider.run(controllers[0], "mysql --protocol=socket -uroot", input=api.TABLE_SQL.encode(), check=True)
    _parallel(lambda n: galera.start_clustercheck(ctx, n), controllers)
    _parallel(lambda n: memcached.start(ctx, n), role_nodes(ctx, "memcached"))
    _configure_and_start(ctx, api, role_nodes(ctx, "api"))
    # haproxy before keepalived: chk_haproxy would otherwise fault the instance at once
    progress.note(f"haproxy + keepalived on {', '.join(role_nodes(ctx, 'haproxy'))}")
    _configure_and_start(ctx, haproxy, role_nodes(ctx, "haproxy"))
    _configure_and_start(ctx, keepalived, role_nodes(ctx, "keepalived"))
    progress.note("settling: the VIP, Galera synced, the RabbitMQ cluster")
    settle(ctx)
    if keystone.enabled(ctx.scenario):
        ks = keystone.nodes(ctx.scenario)
        progress.note(f"keystone on {', '.join(ks)} (schema, bootstrap, uwsgi)")
        _parallel(lambda n: keystone.configure_node(ctx, n), ks)
        ctx.measured["keystone_initialise_s"] = keystone.initialise(ctx, ks[0])
        _parallel(lambda n: keystone.start(ctx, n), ks)
        keystone.await_tokens(ctx, role_nodes(ctx, "client")[0], recovery_deadline_s(ctx))
    if glance.enabled(ctx.scenario):
        gl, store = glance.nodes(ctx.scenario), glance.store(ctx)
        progress.note(f"glance on {', '.join(gl)} (schema, service user, endpoints; images in {store})")
        _parallel(lambda n: glance.configure_node(ctx, n, store), gl)
        ctx.measured["glance_initialise_s"] = glance.initialise(ctx, gl[0])
        _parallel(lambda n: glance.start(ctx, n), gl)
        glance.await_images(ctx, role_nodes(ctx, "client")[0], recovery_deadline_s(ctx))


def needs_shared_directory(scenario: Scenario) -> str | None:
    """What of the scenario needs a directory every node shares (the provider's), if anything: checked before a lab
    is built, so that a provider without one fails at once, naming it."""
    return f"services.{glance.SERVICE} (Glance's image store)" if glance.enabled(scenario) else None


def services(ctx: Context) -> list[str]:
    sc = ctx.scenario
    return (
        ["api", "galera", "rabbitmq", "memcached"]
        + ([TOKENS, VALIDATE] if keystone.enabled(sc) else [])
        + ([IMAGES] if glance.enabled(sc) else [])
    )


def http_service(ctx: Context) -> str:
    """The API the HTTP writer goes through: the scenario's first port a stand-in serves (Keystone's are real)."""
    return next(iter(api.api_ports(ctx.scenario)))


def workload(ctx: Context, out_dir: Path, run_id: int) -> WorkloadConfig:
    """SQL writer through the VIP (HAProxy's galera_cluster), API writer through the VIP (stand-in -> Galera VIP
    -> RabbitMQ), AMQP publisher + consumer over every broker (guide ch. 7 rabbit_hosts), TCP probes of the VIP."""
    vip, pw = vip_address(ctx), ctx.secrets
    brokers = [
        str(ctx.scenario.nodes[n].addresses[ctx.scenario.vips[vip_name(ctx)].network])
        for n in role_nodes(ctx, "rabbitmq")
    ]
    sql = Endpoint("galera", vip, ctx.scenario.services["galera"].port, "halab", pw.mysql_password)
    http = Endpoint("api", vip, ctx.scenario.services[http_service(ctx)].port)
    identity = None
    if keystone.enabled(ctx.scenario):
        port = ctx.scenario.services[next(iter(keystone.ports(ctx.scenario)))].port
        identity = Endpoint(TOKENS, vip, port, keystone.ADMIN, pw.keystone_admin_password)
    image = Endpoint(IMAGES, vip, ctx.scenario.services[glance.SERVICE].port) if glance.enabled(ctx.scenario) else None
    amqp = Endpoint("rabbitmq", brokers[0], api.RABBITMQ_PORT, "halab", pw.rabbitmq_password, hosts=brokers)
    caches = [s.split(":")[0] for s in memcached.client_servers(ctx.scenario)]
    cache = Endpoint("memcached", caches[0], memcached.PORT, hosts=caches)
    return WorkloadConfig(
        out_dir=str(out_dir),
        run_id=run_id,
        sql=sql,
        amqp=amqp,
        http=http,
        cache=cache,
        identity=identity,
        image=image,
        probes=[Endpoint("galera", vip, sql.port), Endpoint("api", vip, http.port)],
        queue_type="quorum" if ctx.opts.quorum_queues else "classic",
        api_table=api.TABLE,
        api_queue=api.QUEUE,
    )


VIP_SERVICES = ("api", "galera", TOKENS, VALIDATE, IMAGES)  # the clients that go through the VIP


def vip_of(ctx: Context, service: str) -> str | None:
    return vip_address(ctx) if service in VIP_SERVICES else None


def vip_holders(ctx: Context) -> list[str]:
    vip = vip_address(ctx)
    return [n for n in role_nodes(ctx, "keepalived") if ctx.provider.is_running(n) and vip in ctx.provider.addresses(n)]


def preferred_master(ctx: Context) -> str | None:
    """With preemption (the guide), the VIP belongs on the highest-priority node whose keepalived and haproxy run;
    with nopreempt (hardened) wherever it is."""
    if ctx.opts.vrrp_nopreempt:
        return None
    ready = [
        n
        for n in role_nodes(ctx, "keepalived")
        if ctx.provider.is_running(n)
        and ctx.provider.run(n, "pgrep -x keepalived >/dev/null && pgrep -x haproxy >/dev/null", timeout=10).ok
    ]
    return max(ready, key=lambda n: keepalived.priority(ctx.scenario, n), default=None)


def galera_up(ctx: Context) -> list[str]:
    return [n for n in role_nodes(ctx, "galera") if ctx.provider.is_running(n) and galera.mariadbd_running(ctx, n)]


def brokers_up(ctx: Context) -> list[str]:
    return [
        n
        for n in rabbitmq_cluster.nodes(ctx)
        if ctx.provider.is_running(n) and ctx.provider.run(n, "pgrep -x beam.smp", timeout=10).ok
    ]


def rabbit_cluster(ctx: Context) -> list[str]:
    """Running cluster members as the first broker that answers sees them."""
    for n in brokers_up(ctx):
        running = rabbitmq_cluster.running_nodes(ctx, n)
        if running:
            return running
    return []


def _state(ctx: Context) -> dict[str, object]:
    up = galera_up(ctx)
    return {
        "vip": vip_holders(ctx),
        "galera": {n: galera.summary(galera.status(ctx, n)) for n in up},
        "rabbitmq": rabbit_cluster(ctx),
    }


def settle(
    ctx: Context, *, on: str | None = None, avoid: str | None = None, timeout: float | None = None
) -> dict[str, str]:
    """Until one keepalived node holds the VIP (not `avoid`), every running mariadbd is Synced in one primary
    component of them all, HAProxy there sees a Galera server UP, and every running broker is in the RabbitMQ
    cluster. Returns {"vip": holder}."""

    def settled() -> dict[str, str] | None:
        holders = vip_holders(ctx)
        if len(holders) != 1 or holders[0] == avoid or (on and holders[0] != on):
            return None
        preferred = preferred_master(ctx)
        if not on and not avoid and preferred and holders[0] != preferred:
            return None  # a preempting keepalived is about to take the VIP: not settled yet
        up = galera_up(ctx)
        if not up or not all(galera.is_member(galera.status(ctx, n), len(up)) for n in up):
            return None
        states = haproxy.server_states(ctx, holders[0])
        if not any(v.startswith("UP") for (listen, _), v in states.items() if listen == "galera_cluster"):
            return None
        if rabbit_cluster(ctx) != sorted(rabbitmq_cluster.nodename(n) for n in brokers_up(ctx)):
            return None
        return {"vip": holders[0]}

    return until(
        settled,
        timeout=timeout or recovery_deadline_s(ctx),
        interval=0.2,
        what="one VIP holder, Galera synced, a Galera server UP behind HAProxy",
        seen=lambda: _state(ctx),
    )


def recovered_on(ctx: Context, service: str, placed: dict[str, str]) -> str | None:
    return placed.get("vip") if service in VIP_SERVICES else None


def recovery_deadline_s(ctx: Context) -> float:
    """A Galera node may need a full join (start + SST + a departure), and HAProxy rise checks after it."""
    return galera.join_deadline_s(ctx.opts) + ctx.opts.haproxy_inter_ms * ctx.opts.haproxy_rise / 1000


def restart_node(ctx: Context, node: str) -> None:
    restart_nodes(ctx, [node])


def restart_nodes(ctx: Context, nodes: list[str]) -> str:
    """What the nodes' init would start after a (re)boot, in dependency order, all of them together: after a
    full-cluster crash RabbitMQ nodes wait for each other, and Galera must be bootstrapped from its most advanced
    node. Returns what recovery did, for the report."""

    def having(role: str) -> list[str]:
        return [n for n in nodes if n in role_nodes(ctx, role)]

    done = []
    if having("galera"):
        choice = galera.recover_all(ctx)  # joins a running primary component, or bootstraps the most advanced
        done.append(f"galera: {choice.node} ({choice.reason})")
        _parallel(lambda n: galera.start_clustercheck(ctx, n), having("galera"))
    brokers = having("rabbitmq")
    for n in brokers:  # start every broker before waiting for any: each waits for its peers' tables
        rabbitmq_cluster.configure_node(ctx, n)
        rabbitmq_cluster.start(ctx, n)
    _parallel(lambda n: rabbitmq_cluster.await_started(ctx, n), brokers)
    _parallel(lambda n: memcached.start(ctx, n), having("memcached"))
    _parallel(lambda n: api.start(ctx, n), having("api"))
    if keystone.enabled(ctx.scenario):
        _parallel(lambda n: keystone.start(ctx, n), [n for n in nodes if n in keystone.nodes(ctx.scenario)])
    if glance.enabled(ctx.scenario):
        _parallel(lambda n: glance.start(ctx, n), [n for n in nodes if n in glance.nodes(ctx.scenario)])
    _parallel(lambda n: haproxy.start(ctx, n), having("haproxy"))
    _parallel(lambda n: keepalived.start(ctx, n), having("keepalived"))
    return "; ".join(done)


def floor(
    ctx: Context,
    service: str,
    before: dict[str, str],
    after: dict[str, str],
    membership_change: bool,
    faults: list[tuple[str, str, float]],
    history: History,
) -> Floor | None:
    """VRRP's least takeover time for the fault that moved the VIP (keepalived.vrrp_bounds_ms): timers only. A heal
    that moved it back onto its node (preemption) has a floor of 0: the old master holds the VIP until the returning
    one's first advert, so no timer need pass between the two."""
    if service not in VIP_SERVICES or before.get("vip") == after.get("vip") or not faults:
        return None
    if faults[0][0].startswith("heal:"):
        if after.get("vip") != faults[0][1]:
            return None
        return Floor(service, 0, {}, method="a preemption onto the returned node: no timer on the path")
    if faults[0][1] != before.get("vip"):  # the VIP moved, but not off the fault's target
        return None
    timers = keepalived.vrrp_bounds_ms(ctx.opts)
    fault = faults[0][0]
    if fault == "stop_service:keepalived":  # a goodbye advert: the BACKUP waits only the skew
        key, how = "released_ms", "keepalived's skew after a priority-0 advert"
    elif fault == "kill_service:haproxy":  # chk_haproxy notices first, then VRRP moves the VIP
        key, how = "chk_haproxy_floor_ms", "chk_haproxy's interval x (fall - 1) + the skew"
    else:  # crash, freeze, kill -9 keepalived: nothing said
        key, how = "silent_floor_ms", "master_down_interval - one advert interval"
    return Floor(service, 0, {f"vrrp:{key}": int(timers[key])}, method=how)


def audits(ctx: Context) -> list[Check]:
    up = galera_up(ctx)
    states = {n: galera.status(ctx, n) for n in up}
    members = all(galera.is_member(st, len(up)) for st in states.values()) and len(up) > 0
    brokers = rabbitmq_cluster.nodes(ctx)
    running = rabbit_cluster(ctx)
    return [
        Check(
            "galera-members",
            members,
            "; ".join(f"{n}: {galera.summary(st)}" for n, st in states.items()) or "no mariadbd running",
        ),
        Check("rabbitmq-members", len(running) == len(brokers), f"running {running} of {len(brokers)} brokers"),
    ]


def status(ctx: Context) -> str:
    return "\n".join(f"{k}: {v}" for k, v in _state(ctx).items())


def notes(ctx: Context) -> list[str]:
    return ["Galera runs on the controllers' own addresses (the guide gives Galera a second one)."]


def start_service(ctx: Context, node: str, service: str) -> None:
    """Start one killed or stopped service again, as an operator (or its init) would."""
    if service == "galera":
        galera.start_node(ctx, node)
    elif service == "rabbitmq":
        rabbitmq_cluster.rejoin(ctx, node)
    else:
        starts = {"keepalived": keepalived.start, "haproxy": haproxy.start, "memcached": memcached.start,
                  "api": api.start, "keystone": keystone.start, "glance": glance.start}  # fmt: skip
        starts[service](ctx, node)
