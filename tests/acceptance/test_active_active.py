"""Guide ch. 6-9 (Galera, RabbitMQ cluster, HAProxy + keepalived, API stand-ins), profile `guide`:
faults under load, every figure from the recorded history, every bound from the configured timers."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from lab.fault_vocabulary import SERVICE_PROCESS
from lab.fixtures import (
    assert_checks,
    assert_floor_holds,
    broker_loss_trial,
    double_vip_seen,
    make_lab,
    report_failback,
)
from lab.session import Lab, TrialResult
from lab.wait import until
from lab.workload import cache
from provision import galera, glance, haproxy, keepalived, keystone, ocf_agents, pacemaker
from provision.active_active import role_nodes, vip_name
from tests.acceptance.openstack_cli import (
    crash_keeps_tokens_and_images,
    ocf_action,
    ocf_tester,
    openstack,
    real_services,
    serving,
)

pytestmark = pytest.mark.active_active


@pytest.fixture(scope="module")
def lab(provider: str) -> Iterator[Lab]:
    yield from make_lab("active-active", "guide", provider)


def front_vip(lab: Lab):  # type: ignore[no-untyped-def]
    """The scenario's VRRP VIP (named as the scenario names it)."""
    return lab.scenario.vips[vip_name(lab.ctx)]


def vrrp(lab: Lab) -> dict[str, float]:
    return keepalived.vrrp_bounds_ms(lab.opts)


def master(lab: Lab) -> str:
    return lab.settle()["vip"]


def other_front(lab: Lab, node: str) -> str:
    return next(n for n in role_nodes(lab.ctx, "keepalived") if n != node)


def haproxy_down_ms(lab: Lab) -> int:
    """HAProxy marks a server DOWN after `fall` failed checks `inter` apart, plus up to one interval of phase."""
    return lab.opts.haproxy_inter_ms * (lab.opts.haproxy_fall + 1)


def event(res: TrialResult, service: str):  # type: ignore[no-untyped-def]
    return next(e for e in res.events if e.service == service)


@pytest.mark.smoke
def test_crash_of_the_master_haproxy_node_moves_the_vip(lab: Lab) -> None:
    m = master(lab)
    b = other_front(lab, m)
    # VRRP's master-down interval, then the new MASTER's HAProxy already has its servers UP (checks never stop).
    bound = int(vrrp(lab)["master_down_ms"] + lab.opts.haproxy_inter_ms)
    with lab.trial("crash-haproxy-master") as t:
        bound += t.resolution_ms
        t.fault("crash", m)
        t.settle(on=b, avoid=m)
        # power it on under load: the guide's keepalived preempts, so the VIP comes back; that move is the heal's
        # own event, bounded like the first (hardened: nopreempt, nothing moves)
        t.clients_back()
        t.heal("crash", m)
        res = t.finish(bounds_ms={"api": bound, "galera": bound})
    for svc in ("api", "galera"):
        assert event(res, svc).vip_to == [b], event(res, svc)
        assert_floor_holds(event(res, svc))
    report_failback(t, res, m)
    assert_checks(res)


def test_sigterm_of_the_master_keepalived_releases_the_vip(lab: Lab) -> None:
    m = master(lab)
    b = other_front(lab, m)
    bound = int(vrrp(lab)["master_down_ms"])  # a goodbye advert makes it the skew; a lost one, master-down
    with lab.trial("stop-keepalived-master") as t:
        bound += t.resolution_ms
        t.fault("stop_service", m, service="keepalived")
        t.settle(on=b, avoid=m)
        # started again under load: the guide's keepalived preempts, the VIP's move back is the heal's event
        t.clients_back()
        t.heal("stop_service", m, service="keepalived")
        res = t.finish(bounds_ms={"api": bound, "galera": bound})
    assert event(res, "api").vip_to == [b]
    for svc in ("api", "galera"):
        assert_floor_holds(event(res, svc))
    report_failback(t, res, m)
    assert_checks(res)  # includes vip-holders: never on two nodes, the move back included


def test_kill9_of_the_master_keepalived_leaves_the_vip_on_both(lab: Lab) -> None:
    """A SIGKILLed keepalived removes nothing: the BACKUP takes the VIP while the old MASTER still has it."""
    m = master(lab)
    vip = str(front_vip(lab).address)
    with lab.trial("kill-keepalived-master") as t:
        t.fault("kill_service", m, service="keepalived")
        until(
            lambda: double_vip_seen(t, vip),
            timeout=2 * vrrp(lab)["master_down_ms"] / 1000,
            what=f"{vip} on both keepalived nodes",
            seen=lambda: lab.status(),
        )
        t.heal("kill_service", m, service="keepalived")  # a restarted keepalived cleans up and preempts back
        res = t.finish(expect_split_brain=True)
    assert res.check("split-brain").passed, res.check("split-brain").detail
    lab.report.notes.append(
        f"kill -9 keepalived on {m}: VIP on both nodes; clients saw api {event(res, 'api').downtime_ms} ms, "
        f"galera {event(res, 'galera').downtime_ms} ms of downtime"
    )
    assert_checks(res)  # both HAProxies route to the same Galera cluster: nothing acknowledged may be lost


def test_killed_haproxy_lowers_the_priority_and_moves_the_vip(lab: Lab) -> None:
    m = master(lab)
    b = other_front(lab, m)
    bound = int(vrrp(lab)["chk_haproxy_ms"])
    with lab.trial("kill-haproxy-master") as t:
        bound += t.resolution_ms
        t.fault("kill_service", m, service="haproxy")
        t.settle(on=b, avoid=m, timeout=bound / 1000 * 2)
        # HAProxy back: chk_haproxy restores the priority and the guide's keepalived preempts (the heal's event)
        t.clients_back()
        t.heal("kill_service", m, service="haproxy")
        res = t.finish(bounds_ms={"api": bound, "galera": bound})
    assert event(res, "api").vip_to == [b]
    for svc in ("api", "galera"):
        assert_floor_holds(event(res, svc))
    report_failback(t, res, m)
    assert_checks(res)


@pytest.mark.smoke
def test_killed_galera_node_is_taken_out_by_haproxy(lab: Lab) -> None:
    active = role_nodes(lab.ctx, "galera")[0]  # galera_cluster's one non-backup server
    peers = [n for n in role_nodes(lab.ctx, "galera") if n != active]
    front = master(lab)
    bound = haproxy_down_ms(lab)  # then the backup servers, UP all along, take the writes
    with lab.trial("kill-galera-active") as t:
        bound += t.resolution_ms
        t.fault("kill_service", active, service="galera")
        until(
            lambda: all(galera.status(lab.ctx, n).get("wsrep_cluster_size") == "2" for n in peers),
            timeout=galera.departure_bound_s(lab.opts),
            what=f"{peers} to drop {active} (size 2)",
            seen=lambda: {n: galera.summary(galera.status(lab.ctx, n)) for n in peers},
        )
        until(
            lambda: haproxy.server_states(lab.ctx, front).get(("galera_cluster", active), "").startswith("DOWN"),
            timeout=haproxy_down_ms(lab) / 1000,
            what=f"HAProxy on {front} to mark {active} DOWN",
            seen=lambda: haproxy.server_states(lab.ctx, front),
        )
        # writes go on through a backup server while the node is out
        until(
            lambda: t.history().select(service="galera", type="ok", f="write", since=t.fault_at),
            timeout=(lab.opts.haproxy_inter_ms + t.resolution_ms) / 1000,
            what=f"an acknowledged write through a backup server while {active} is out",
        )
        t.heal("kill_service", active, service="galera")
        res = t.finish(bounds_ms={"galera": bound, "api": bound})
    assert_checks(res)


def test_partitioned_galera_node_goes_non_primary_then_rejoins(lab: Lab) -> None:
    lone, *majority = reversed(role_nodes(lab.ctx, "galera"))  # a backup server, so HAProxy's choice is unaffected
    with lab.trial("partition-galera") as t:
        t.fault("partition", lone, network=front_vip(lab).network, others=majority)
        until(
            lambda: galera.status(lab.ctx, lone).get("wsrep_cluster_status") == "non-Primary",
            timeout=galera.departure_bound_s(lab.opts),
            what=f"{lone} to go non-Primary",
            seen=lambda: galera.summary(galera.status(lab.ctx, lone)),
        )
        minority_at = time.time()
        bare = lab.provider.run(lone, "mysql -N -e 'SELECT 1'")
        table = lab.provider.run(lone, "mysql -N -e 'SELECT COUNT(*) FROM halab.writes'")
        until(
            lambda: t.history().select(service="galera", type="ok", f="write", since=minority_at),
            timeout=(lab.opts.haproxy_inter_ms + t.resolution_ms) / 1000,
            what=f"an acknowledged write while {lone} is a non-Primary minority (the majority serves)",
        )
        t.heal("partition", lone)
        until(
            lambda: galera.is_member(galera.status(lab.ctx, lone), 3),
            timeout=galera.join_deadline_s(lab.opts),
            what=f"{lone} back in a primary component of 3",
            seen=lambda: galera.summary(galera.status(lab.ctx, lone)),
        )
        res = t.finish()
    assert bare.ok and bare.stdout.strip() == "1", f"SELECT 1 on the minority: {bare}"
    assert not table.ok and "WSREP" in table.stderr, f"a table query on the minority must be refused: {table}"
    log = lab.provider.run(lone, f"cat {galera.LOG}").stdout
    lab.report.notes.append(f"partition of {lone}: rejoined by {'IST' if 'IST received' in log else 'SST'}")
    assert_checks(res)


def test_crash_of_every_controller_recovers_galera_from_the_most_advanced(lab: Lab) -> None:
    """Power cut on all three controllers (Galera, RabbitMQ, memcached, the APIs all die): on boot, Galera's
    recovery reads grastate.dat / --wsrep-recover and bootstraps the most advanced node; no acknowledged write
    may be lost."""
    controllers = role_nodes(lab.ctx, "galera")
    with lab.trial("crash-all-controllers") as t:
        for n in controllers:
            t.fault("crash", n)
        recovery = t.heal_crashes(controllers)
        res = t.finish()
    lab.report.notes.append(f"all controllers crashed: {recovery}")
    # bootstrapped from a node that knew its position (galera.choose_bootstrap_node: the highest seqno), and all of
    # them are one primary component again
    assert re.search(r"galera: (\S+) \(\1: highest seqno \d+", recovery), f"no bootstrap choice: {recovery}"
    for n in controllers:
        st = galera.status(lab.ctx, n)
        assert galera.is_member(st, len(controllers)), f"{n} after recovery: {galera.summary(st)}"
    # the outage may follow any of the three crashes (each is its own event): the trial's longest is the one
    assert res.outages["galera"].downtime_ms, "every controller powered off, yet the clients saw no gap"
    assert_checks(res)  # lost-writes: every acknowledged write survived; lost-messages: every confirmed message


def test_loss_of_one_rabbitmq_node_loses_no_confirmed_message(lab: Lab) -> None:
    res = broker_loss_trial(lab, "kill-rabbitmq")
    # the clients were on the killed broker (the first of their hosts): a confirm or a connection was lost
    assert event(res, "rabbitmq").downtime_ms > 0, event(res, "rabbitmq")
    assert_checks(res)


def test_loss_of_one_memcached_server_keeps_clients_working(lab: Lab) -> None:
    node = role_nodes(lab.ctx, "memcached")[1]
    with lab.trial("kill-memcached") as t:
        bound = int(cache.failover_bound_s(t.cfg) * 1000)
        t.fault("kill_service", node, service="memcached")
        # keep the load on long enough for keys to have landed on the dead server and moved off it
        until(
            lambda: len(t.history().select(service="memcached", type="ok", since=t.fault_at)) >= 20,
            timeout=lab.playbook.recovery_deadline_s(lab.ctx),
            what="memcached ops to go on without " + node,
        )
        t.heal("kill_service", node, service="memcached")  # back under load: its keys come back to it
        res = t.finish(bounds_ms={"memcached": bound})
    report_failback(t, res, node)
    assert_checks(res)


def keystone_or_skip(lab: Lab) -> None:
    if not keystone.enabled(lab.scenario):
        pytest.skip(f"{lab.scenario.path} balances no Keystone service ({', '.join(keystone.SERVICES)})")


@pytest.mark.smoke
def test_openstack_cli_gets_a_token_through_the_vip_that_every_controller_validates(lab: Lab) -> None:
    """Guide ch. 9's Identity API for real: the stock `openstack` CLI on the client node authenticates through the
    VIP, the catalog's endpoints are the VIP's, and the token it got validates on each controller asked directly
    (the Fernet keys are the same on every one)."""
    keystone_or_skip(lab)
    sc = lab.scenario
    token = openstack(lab, "token issue -f value -c id")
    assert token.startswith("gAAAAA"), "not a Fernet token"  # Fernet's version byte 0x80, base64
    urls = set(openstack(lab, "endpoint list -f value -c URL").split())
    expected = {keystone.url(sc, s) for s in keystone.ports(sc)} | ({glance.url(sc)} if glance.enabled(sc) else set())
    assert urls == expected, urls
    for node in keystone.nodes(sc):
        status = keystone.probe(lab.ctx, lab.client, "validate", keystone.node_url(sc, node), "10", stdin=token)
        assert status == "200", f"the token from the VIP, validated by {node} itself: {status}"


@pytest.mark.smoke
def test_openstack_cli_uploads_an_image_through_the_vip_that_every_controller_serves_whole(lab: Lab) -> None:
    """Guide ch. 9's Image API for real: `openstack image create` through the VIP stores the image once, in the
    store every controller shares; `openstack image list` lists it; each controller's own Glance serves it back with
    the sha256 it was uploaded with."""
    if not glance.enabled(lab.scenario):
        pytest.skip(f"{lab.scenario.path} runs no Glance ({glance.SERVICE} with Keystone)")
    sc, name = lab.scenario, f"cli-{time.time_ns()}"
    made = openstack(lab, f"image create --file /etc/services --disk-format raw --container-format bare {name} "
                          "-f value -c id")  # fmt: skip
    assert name in openstack(lab, "image list -f value -c Name").split(), f"{name} not listed through the VIP"
    want = lab.provider.run(lab.client, "sha256sum /etc/services", check=True).stdout.split()[0]
    token = openstack(lab, "token issue -f value -c id")
    for node in glance.nodes(sc):
        got = keystone.probe(lab.ctx, lab.client, "sha256", f"{glance.node_url(sc, node)}v2/images/{made}/file", "10",
                             stdin=token)  # fmt: skip
        assert got == f"sha256 {want}", f"{node}'s own Glance served image {made} as {got}; uploaded sha256 {want}"
    openstack(lab, f"image delete {made}")


def test_the_labs_ocf_agents_pass_ocf_tester_and_their_monitor_asks_the_api(lab: Lab) -> None:
    """Guide ch. 4's agents, the lab's own (provision/ocf): on one controller, with the lab's Keystone and Glance
    stopped there, each agent passes resource-agents' ocf-tester (meta-data valid against ra-api-1.dtd,
    validate-all, monitor of a stopped service 7, start, monitor 0, start and stop twice, monitor 7 again); and its
    monitor asks the API, not only the pid: with the service the agent started frozen (SIGSTOP), monitor says 1 (a
    failure Pacemaker recovers), thawed 0. The lab's own services run there again after."""
    keystone_or_skip(lab)
    sc, ctx, node = lab.scenario, lab.ctx, keystone.nodes(lab.scenario)[-1]
    ocf_agents.install(ctx, node)
    agents = [("keystone", ocf_agents.keystone_params(ctx, node), "keystone")]
    if glance.enabled(sc):
        agents.append(("glance-api", ocf_agents.glance_params(ctx, node), "glance"))
    # ocf-tester starts and stops each twice; a start waits for the API (Keystone loads its app in a few seconds)
    deadline = lab.playbook.recovery_deadline_s(ctx)
    for agent, params, service in agents:
        lab.provider.stop_service(node, SERVICE_PROCESS[service])
        try:
            r = ocf_tester(lab, node, agent, params, timeout=deadline)
            assert r.ok and "passed all tests" in r.stdout, f"ocf-tester {agent} on {node}: {r.stdout[-1500:]}"
            # a recurring monitor, no probe; a frozen service fails its first question (longer on an emulated CPU)
            quick = params | {"probe_timeout": str(2 * pacemaker.timeout_scale(ctx)), "CRM_meta_interval": "10000"}
            assert ocf_action(lab, node, agent, "start", quick, deadline).rc == 0
            pid = lab.provider.run(node, f"cat {params['pid']}", check=True).stdout.strip()
            lab.provider.run(node, f"kill -STOP -{pid}", check=True)  # its process group: master and workers
            frozen = ocf_action(lab, node, agent, "monitor", quick, deadline)
            lab.provider.run(node, f"kill -CONT -{pid}", check=True)
            assert frozen.rc == 1, f"monitor of a frozen {agent}: rc {frozen.rc} ({frozen.stderr[-300:]})"
            asked = params.get("url", params["os_auth_url"])  # glance's monitor asks its own URL, keystone's the auth
            assert "ocf-exit-reason:" in frozen.stderr and asked in frozen.stderr, \
                f"the monitor did not say what it asked {asked} and what it got: {frozen.stderr[-300:]}"
            until(lambda a=agent, q=quick: ocf_action(lab, node, a, "monitor", q, deadline).rc == 0,
                  timeout=deadline, what=f"{agent}'s monitor to pass once thawed")  # fmt: skip
            assert ocf_action(lab, node, agent, "stop", quick, deadline).rc == 0
            assert ocf_action(lab, node, agent, "monitor", quick, deadline).rc == 7
        finally:
            ocf_action(lab, node, agent, "stop", params, deadline)
            lab.start_service(node, service)
    keystone.await_tokens(ctx, lab.client, deadline)
    if glance.enabled(sc):
        glance.await_images(ctx, lab.client, deadline)


def test_crash_of_the_controller_serving_the_client_keeps_tokens_and_images_served(lab: Lab) -> None:
    """Guide ch. 9: the controller that serves the client (HAProxy's `balance source` sends it to one) loses power:
    its Keystone, Glance, a Galera server, a broker, a memcached. Tokens are still issued and images listed and
    downloaded through the VIP once HAProxy has marked its servers DOWN; the run's first token, issued before the
    crash, still validates on the two that are left; the image uploaded before the crash comes back whole
    (image-intact): the gap is bounded by HAProxy's inter x fall, plus its `timeout server` where the node was also
    galera_cluster's active server (pooled database connections hang that long), plus for Keystone the requests its
    clients gave up on meanwhile, which it works off first."""
    keystone_or_skip(lab)
    front = master(lab)
    with lab.trial("crash-controller-serving-the-client") as t:
        node = serving(lab, front, real_services(lab)[-1])  # Glance's where it runs, else Keystone's
        assert node in keystone.nodes(lab.scenario), f"HAProxy on {front} sends the client to {node}"
        res = crash_keeps_tokens_and_images(lab, t, node, front)
    assert_checks(res)
