"""Guide ch. 2-4 end to end: ch. 3's pair (g_mysql, g_rabbitmq: provision/active_passive.py, unchanged), then the
API nodes' own corosync + Pacemaker cluster running g_services_api (p_api-ip, p_keystone, p_fs_glance,
p_glance-api, p_cinder-api, p_neutron-server, p_ceilometer-agent-central) with the lab's OCF agents, Keystone,
Glance, Cinder and Neutron bound to the API VIP and storing in ch. 3's MySQL through its VIP, Ceilometer's central
agent polling them and publishing to ch. 3's RabbitMQ through its VIP. The harness's cluster under test is the API
cluster (its quorum, placement and floors); faults reach ch. 3's nodes too (`holder:g_mysql`)."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lab import progress
from lab.checks.base import Check
from lab.checks.placement import placement
from lab.floors import Floor
from lab.history import History
from lab.scenario import Scenario
from lab.workload.config import Endpoint, WorkloadConfig
from provision import (
    active_passive,
    ceilometer,
    cinder,
    drbd,
    glance,
    keystone,
    neutron,
    ocf_agents,
    pacemaker,
    pacemaker_floor,
    pacemaker_groups,
    uwsgi_api,
)
from provision.context import Context, render

HONOURS_LAB_SERVICES = True  # ch. 3's half: LAB_SERVICES=mysql leaves RabbitMQ (and the central agent) out (TCG)
VIP_HANDOVER_SAMPLES = 0  # Pacemaker stops a VIP before it starts it elsewhere
TOKENS, VALIDATE, IMAGES = "keystone", "keystone-validate", "glance"  # the workload's services
MEMBERS = {TOKENS: "p_keystone", VALIDATE: "p_keystone", IMAGES: "p_glance-api"}  # the primitive serving each
STORE = "/var/lib/glance/images"  # p_fs_glance's mount point: Glance's file store
# One thread per uwsgi worker here: with 4 (the AA controllers'), the lone active Keystone deadlocked under the
# workload ("greenlet.error: cannot switch to a different thread": an eventlet semaphore some library takes,
# waited on across threads), its listen queue full until the start timed out. Two workers serve two at once.
KEYSTONE_PROCESSES = 2
PACKAGES = [*active_passive.PACKAGES, "python3-keystone", "uwsgi-plugin-python3", "python3-glance", "python3-cinder",
            "python3-neutron", "python3-ceilometer"]  # fmt: skip
# ch. 4's APIs under uwsgi, in the group's order after Glance: (the API, its primitive, its configuration)
UWSGI_APIS: tuple[tuple[uwsgi_api.UwsgiApi, str, Callable[[Context], str]], ...] = (
    (cinder.API, "p_cinder-api", cinder.settings),
    (neutron.API, "p_neutron-server", neutron.settings),
)


def cluster_under_test(scenario: Scenario) -> str:
    """The API nodes' cluster (the loader made sure there is one)."""
    return next(c for c, nodes in scenario.clusters.items() if scenario.nodes[nodes[0]].has_role("api"))


def backend(ctx: Context) -> Context:
    """ch. 3's cluster: the same lab, addressed at its pair."""
    other = next(c for c in ctx.scenario.clusters if c != cluster_under_test(ctx.scenario))
    return dataclasses.replace(ctx, cluster=other)


def api(ctx: Context) -> Context:
    return dataclasses.replace(ctx, cluster=cluster_under_test(ctx.scenario))


def group(ctx: Context) -> str:
    return ctx.scenario.services[next(iter(keystone.ports(ctx.scenario)))].group or ""


def refuses_services(scenario: Scenario, only: tuple[str, ...]) -> str | None:
    """LAB_SERVICES narrows ch. 3's half only: the APIs always run, and every one of them stores in its MySQL."""
    apis = [s for s in only if s not in active_passive.SERVICES]
    if apis:
        return (f"it narrows ch. 3's services ({', '.join(active_passive.SERVICES)}) of {scenario.path}, the APIs "
                f"always run: leave {', '.join(apis)} out of it")  # fmt: skip
    if "mysql" not in only:
        return "every API stores in ch. 3's MySQL: keep mysql in it"
    return None


def central_agent(ctx: Context) -> bool:
    """The guide's last member publishes to ch. 3's RabbitMQ: it runs unless LAB_SERVICES leaves RabbitMQ out."""
    return ceilometer.enabled(ctx.scenario) and (ctx.only is None or "rabbitmq" in ctx.only)


def unbuilt_on(provider: str, scenario: Scenario) -> str | None:
    """What this playbook cannot build on `provider` from `scenario` (checked before anything is built)."""
    if provider == "libvirt" and glance.enabled(scenario) and scenario.services[glance.SERVICE].drbd_minor is None:
        return (f"services.{glance.SERVICE}: Glance's store is a DRBD resource on libvirt and it has no DRBD minor: "
                "set drbd_minor and drbd_port")  # fmt: skip
    return None


def _parallel(fn: object, nodes: list[str]) -> None:
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        list(pool.map(fn, nodes))  # type: ignore[arg-type]


def _schemas(ctx: Context, node: str, db_node: str) -> None:
    """Every service's database and schema at once, from `node`: each its own database, none needs another's (nor
    Keystone answering), and each db_sync waits on MySQL round trips more than on a CPU."""
    t0 = time.monotonic()
    others: list[Callable[[], None]] = [functools.partial(uwsgi_api.create_schema, a, ctx, node, db_node)
                                        for a, _p, _s in UWSGI_APIS if uwsgi_api.enabled(a, ctx.scenario)]  # fmt: skip
    if glance.enabled(ctx.scenario):
        others.append(functools.partial(glance.create_schema, ctx, node, db_node))
    with ThreadPoolExecutor(max_workers=len(others) + 1) as pool:
        keystone_s = pool.submit(keystone.initialise, ctx, node, db_node)
        rest = [pool.submit(job) for job in others]
        ctx.measured["keystone_initialise_s"] = keystone_s.result()
        for f in rest:
            f.result()  # a failed schema raises here, naming its command
    ctx.measured["schemas_s"] = round(time.monotonic() - t0, 2)


def _configure_node(ctx: Context, node: str) -> None:
    ctx.provider.run(node, f"mkdir -p {STORE}", check=True, timeout=15)
    keystone.configure_node(ctx, node)
    if glance.enabled(ctx.scenario):
        glance.configure_node(ctx, node, STORE)
    for api_, _primitive, settings in UWSGI_APIS:
        if uwsgi_api.enabled(api_, ctx.scenario):
            uwsgi_api.configure_node(api_, ctx, node, settings(ctx))
    if central_agent(ctx):
        ceilometer.configure_node(ctx, node)
    ocf_agents.install(ctx, node)


def _glance_store(ctx: Context, first: str) -> str:
    """p_fs_glance's device, an empty XFS whose root is Glance's store (its own, once, as mysql_install_db is
    MySQL's): a DRBD resource where the provider has the module (ch. 3's sequence, then Pacemaker's ms_drbd_glance
    owns it), else the shared-disk stand-in."""
    size = ctx.scenario.services[glance.SERVICE].disk_mb
    if ctx.drbd:
        progress.note(f"DRBD resource {glance.SERVICE} on {', '.join(ctx.cluster_nodes)}")
    device = drbd.create(ctx, [glance.SERVICE])[glance.SERVICE] if ctx.drbd else ctx.provider.shared_disk(
        glance.SERVICE, size)  # fmt: skip
    ctx.provider.run(first, f"mount -t xfs {device} {STORE} && chown {glance.USER} {STORE}; rc=$?; "
                     f"umount {STORE}; exit $rc", check=True, timeout=60)  # fmt: skip
    if ctx.drbd:
        drbd.release(ctx, [glance.SERVICE])
    return device


def crm(ctx: Context, device: str | None) -> str:
    sc = ctx.scenario
    vip = sc.vip_for(next(iter(keystone.ports(sc))))
    first = ctx.cluster_nodes[0]  # the parameters are the same on every node here: all bind the VIP
    gl = ocf_agents.glance_params(ctx, first) if glance.enabled(sc) else None
    ks = ocf_agents.keystone_params(ctx, first) | {"processes": str(KEYSTONE_PROCESSES), "threads": "1"}
    cn = ocf_agents.cinder_params(ctx) if uwsgi_api.enabled(cinder.API, sc) else None
    nt = ocf_agents.neutron_params(ctx) if uwsgi_api.enabled(neutron.API, sc) else None
    ce = ocf_agents.ceilometer_params() if central_agent(ctx) else None
    return render("api-cluster.crm.j2", ip_id=vip.resource, vip=vip.address, clone_max=len(ctx.cluster_nodes),
                  prefixlen=sc.networks[vip.network].cidr.prefixlen, keystone=ks,
                  glance=gl, cinder=cn, neutron=nt, ceilometer=ce, device=device, store=STORE,
                  group=group(ctx), drbd=glance.SERVICE if ctx.drbd else None)  # fmt: skip


def _asked(api_: uwsgi_api.UwsgiApi, ctx: Context, client: str, _where: str) -> str:
    return uwsgi_api.status(api_, ctx, client)


def converge(ctx: Context) -> None:
    db = backend(ctx)
    ctx = api(ctx)
    nodes, first, client = ctx.cluster_nodes, ctx.cluster_nodes[0], ctx.scenario.nodes_with_role("client")[0].name
    # the API nodes' configuration and their own cluster need nothing of ch. 3's: built while ch. 3's pair comes up
    with ThreadPoolExecutor(max_workers=1) as pool:
        ch3 = pool.submit(active_passive.converge, db)
        progress.note(f"the APIs' configuration and the lab's OCF agents on {', '.join(nodes)}")
        _parallel(lambda n: _configure_node(ctx, n), nodes)
        # DRBD on the API nodes meanwhile; the stand-in after ch. 3's, whose own the provider's state file records
        drbd_first = ctx.drbd and glance.enabled(ctx.scenario)
        device = _glance_store(ctx, first) if drbd_first else None
        parts = pacemaker.stack_up(ctx)
        ch3.result()
    if glance.enabled(ctx.scenario) and not drbd_first:
        device = _glance_store(ctx, first)
    db_node = active_passive.wait_settled(db, db.cluster_nodes[0])[db.scenario.services["mysql"].group or ""]
    progress.note(f"the services' schemas in ch. 3's MySQL (on {db_node}), from {first}")
    _schemas(ctx, first, db_node)
    progress.note(f"crm configure, then {group(ctx)} starting")
    pacemaker.configure(ctx, first, "\n".join([*parts, crm(ctx, device)]))
    keystone.await_answers({"vip": keystone.auth_url(ctx.scenario)},
                           lambda where: keystone.token_status(ctx, client, where), "201", lambda _n: True,
                           ("p_keystone", keystone.LOG), recovery_deadline_s(ctx))  # fmt: skip
    # every later member's service user and endpoints at once (each needs Keystone only), then every one started:
    # Pacemaker starts them in the group's order, and each is asked at the VIP in turn
    uwsgi = [(a, p) for a, p, _s in UWSGI_APIS if uwsgi_api.enabled(a, ctx.scenario)]
    later: list[tuple[str, Callable[[], None]]] = []
    if glance.enabled(ctx.scenario):
        later.append(("p_glance-api", functools.partial(glance.register, ctx, first)))
    later += [(p, functools.partial(uwsgi_api.register, a, ctx, first)) for a, p in uwsgi]
    if central_agent(ctx):
        later.append((ceilometer.PRIMITIVE, functools.partial(ceilometer.register, ctx, first)))
    if later:
        progress.note(f"the service users and endpoints of {', '.join(p for p, _ in later)}, then their starts")
        with ThreadPoolExecutor(max_workers=len(later)) as pool:
            for f in [pool.submit(register) for _p, register in later]:
                f.result()
        for primitive, _register in later:
            ctx.provider.run(first, f"crm resource start {primitive}", check=True, timeout=60)
    if glance.enabled(ctx.scenario):
        keystone.await_answers({"vip": glance.url(ctx.scenario)},
                               lambda where: glance.images_status(ctx, client, where), "200", lambda _n: True,
                               ("p_glance-api", glance.LOG), recovery_deadline_s(ctx))  # fmt: skip
    for api_, primitive in uwsgi:
        keystone.await_answers({"vip": uwsgi_api.url(api_, ctx.scenario)},
                               functools.partial(_asked, api_, ctx, client), "200", lambda _n: True,
                               (primitive, api_.log_file), recovery_deadline_s(ctx))  # fmt: skip
    settle(ctx)


# ---------------------------------------------------------------- the playbook interface (provision/playbook.py)
def services(ctx: Context) -> list[str]:
    return [TOKENS, VALIDATE] + ([IMAGES] if glance.enabled(ctx.scenario) else [])


def workload(ctx: Context, out_dir: Path, run_id: int) -> WorkloadConfig:
    """A Keystone client (issues tokens, validates the first) and a Glance client (the image uploaded before the
    fault, listed and downloaded) through the API VIP; a TCP probe of it."""
    sc = ctx.scenario
    vip = str(sc.vip_for(next(iter(keystone.ports(sc)))).address)
    port = next(iter(keystone.ports(sc).values()))
    identity = Endpoint(TOKENS, vip, port, keystone.ADMIN, ctx.secrets.keystone_admin_password)
    image = Endpoint(IMAGES, vip, sc.services[glance.SERVICE].port) if glance.enabled(sc) else None
    return WorkloadConfig(out_dir=str(out_dir), run_id=run_id, identity=identity, image=image,
                          probes=[Endpoint(TOKENS, vip, port)])  # fmt: skip


def vip_of(ctx: Context, service: str) -> str | None:
    return str(ctx.scenario.vip_for(next(iter(keystone.ports(ctx.scenario)))).address)


def settle(
    ctx: Context, *, on: str | None = None, avoid: str | None = None, timeout: float | None = None
) -> dict[str, str]:
    """Every group of both clusters whole on one node, no transition pending; group -> node."""
    db = backend(ctx)
    out = pacemaker_groups.settle(db, active_passive.groups(db).values(), timeout=timeout,
                                  avoid=avoid if avoid in db.cluster_nodes else None)  # fmt: skip
    a = api(ctx)
    mine = a.cluster_nodes
    return out | pacemaker_groups.settle(a, [group(a)], on=on if on in mine else None,
                                         avoid=avoid if avoid in mine else None, timeout=timeout)  # fmt: skip


def recovered_on(ctx: Context, service: str, placed: dict[str, str]) -> str | None:
    return placed.get(group(ctx))


def recovery_deadline_s(ctx: Context) -> float:
    """The API group's worst case (its CIB's timeouts), after ch. 3's groups' (the APIs wait on MySQL)."""
    db = backend(ctx)
    return active_passive.start_deadline_s(db) + pacemaker_groups.start_deadline_s(api(ctx), [group(ctx)])


def _of(ctx: Context, node: str) -> Context:
    return api(ctx) if node in api(ctx).cluster_nodes else backend(ctx)


def restart_node(ctx: Context, node: str) -> None:
    c = _of(ctx, node)
    if c.cluster == cluster_under_test(ctx.scenario):
        pacemaker.start_stack(c, node)  # its configuration and agents are on its disk
        pacemaker.wait_online(c, node, c.cluster_nodes)
    else:
        active_passive.restart_node(c, node)


def restart_nodes(ctx: Context, nodes: list[str]) -> str:
    for n in nodes:
        restart_node(ctx, n)
    return f"corosync and pacemaker started on {', '.join(nodes)}"


def start_service(ctx: Context, node: str, service: str) -> None:
    """corosync and pacemaker as the node's init would; the group's services are Pacemaker's to restart."""
    if service in ("corosync", "pacemaker"):
        restart_node(ctx, node)


def floor(
    ctx: Context,
    service: str,
    before: dict[str, str],
    after: dict[str, str],
    membership_change: bool,
    faults: list[tuple[str, str, float]],
    history: History,
) -> Floor | None:
    """The least the API group's move could take `service`: from its own member on (provision/pacemaker_floor.py)."""
    return pacemaker_floor.group_floor(ctx, service, group(ctx), MEMBERS[service], before, after, membership_change,
                                       faults, history)  # fmt: skip


def audits(ctx: Context) -> list[Check]:
    return [placement(ctx.ask("crm_mon -1 --output-as=xml") or "")]


def status(ctx: Context) -> str:
    db = backend(ctx)
    return "\n".join(
        f"# cluster {c.cluster or '(ch. 3)'}\n" + (c.ask("crm_mon -1 -r") or "no node of it answers crm_mon")
        for c in (db, api(ctx))
    )


def notes(ctx: Context) -> list[str]:
    vip = ctx.scenario.vip_for(next(iter(keystone.ports(ctx.scenario)))).resource
    agent = (f" and {ceilometer.PRIMITIVE} (polling {', '.join(ceilometer.METERS)} every {ceilometer.POLL_INTERVAL_S} "
             "s, samples to ch. 3's RabbitMQ)") if central_agent(ctx) else ""  # fmt: skip
    left_out = [] if central_agent(ctx) or not ceilometer.enabled(ctx.scenario) else [
        f"LAB_SERVICES={','.join(ctx.only or ())}: ch. 3's RabbitMQ left out, so {ceilometer.PRIMITIVE} (which "
        "publishes to it) is not configured"
    ]  # fmt: skip
    return active_passive.notes(backend(ctx)) + [
        f"ch. 4: {group(ctx)} runs {vip}, p_keystone, p_fs_glance, p_glance-api, p_cinder-api, p_neutron-server "
        f"(Neutron's API; no RPC server: no Neutron agent runs in the lab){agent}; p_glance-registry is gone "
        "(removed in Stein)"
    ] + left_out
