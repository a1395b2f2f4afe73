"""Guide ch. 4 (the API node cluster), profile `guide`: the API nodes' own Pacemaker cluster running
g_services_api (the API VIP, Keystone, Glance's store, Glance, Cinder, Neutron and Ceilometer's central agent)
through ch. 3's MySQL and RabbitMQ VIPs, beside ch. 3's pair in the same lab; faults on either cluster, token and
image downtime measured from the client's history, the central agent's samples taken off ch. 3's broker."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime

import pytest

from lab import bounds
from lab.checks.ordering import group_order, parse
from lab.fixtures import assert_checks, assert_floor_holds, double_vip_seen, make_lab, report_failback
from lab.session import Lab, TrialResult
from lab.wait import until
from provision import (
    active_passive,
    api_cluster,
    ceilometer,
    cinder,
    drbd,
    glance,
    keystone,
    neutron,
    ocf_agents,
    pacemaker,
    uwsgi_api,
)
from provision.api_cluster import IMAGES, TOKENS
from tests.acceptance.openstack_cli import ocf_action, ocf_tester, openstack

pytestmark = pytest.mark.api


@pytest.fixture(scope="module")
def lab(provider: str) -> Iterator[Lab]:
    yield from make_lab("api-cluster", "guide", provider)


def group(lab: Lab) -> str:
    return api_cluster.group(lab.ctx)


def holder(lab: Lab) -> str:
    """The API node running g_services_api, once every group of the lab runs whole and nothing is pending."""
    return lab.settle()[group(lab)]


def peer(lab: Lab, node: str) -> str:
    return next(n for n in lab.cluster_nodes if n != node)


def members(lab: Lab) -> list[str]:
    return bounds.group_members(lab.pcmk.cib_resources(), group(lab))


def api_services(lab: Lab) -> list[str]:
    return lab.playbook.services(lab.ctx)


def move_bound_ms(lab: Lab, *, stop_first: bool) -> int:
    """The API group's move: membership (a crash) + every member's start (+ stop) timeout, as the CIB has them."""
    return bounds.failover_bound_ms(lab.opts, lab.pcmk.cib_resources(), group(lab), stop_first=stop_first)


# pacemaker-execd's line for each finished op (pacemaker.log, info): "p_keystone stop (call 20, PID 574) exited with
# status 0 (execution time 3.343s after being queued 2ms)"
EXEC_TIME = r"{rsc} {task} \(call \d+, PID \d+\) exited with status 0 \(execution time ([\d.]+)(ms|s)\b"


def restart_in_place_ms(lab: Lab, node: str, primitive: str) -> tuple[int, str]:
    """The most a dead `primitive` can cost: its next monitor (interval + timeout), then the restart of it and the
    members after it (a group restarts what follows a failed member) as long as it took: the latest stop and start
    of each on `node`, their execution times from pacemaker-execd's lines (crm_mon -o keeps only the last op).
    (ms, how it was counted)"""
    cib, after = lab.pcmk.cib_resources(), members(lab)[members(lab).index(primitive) :]
    monitor = bounds.op_ms(cib, primitive, "monitor", "interval") + bounds.op_ms(cib, primitive, "monitor")
    log = "\n".join(lab.pcmk.pacemaker_log(node))
    took: dict[str, int | None] = {}
    for m in after:
        for task in ("stop", "start"):
            found = re.findall(EXEC_TIME.format(rsc=re.escape(m), task=task), log)
            took[f"{m}:{task}"] = round(float(found[-1][0]) * (1 if found[-1][1] == "ms" else 1000)) if found else None
    assert all(v is not None for v in took.values()), f"the restart's ops on {node} (pacemaker.log): {took}"
    restart = sum(v for v in took.values() if v is not None)
    return monitor + restart, f"monitor interval + timeout {monitor} ms + the restart's ops {took} (pacemaker-execd)"


def samples_after(lab: Lab, since: float, want: str, *, resource: str | None = None) -> list[ceilometer.Sample]:
    """The central agent's samples polled after `since` (of `resource` if given), taken off ch. 3's broker until
    there is one: within a poll interval of the agent's start, plus the APIs' answers it waits for (its Keystone
    token, then the list). `want` says what for, when none comes."""
    taken: list[ceilometer.Sample] = []

    def came() -> bool:
        taken.extend(s for s in ceilometer.take_samples(lab.ctx, lab.client)
                     if s.at > since and resource in (None, s.resource))  # fmt: skip
        return bool(taken)

    deadline = 2 * ceilometer.POLL_INTERVAL_S + 2 * keystone.TOKEN_TIMEOUT_S
    until(came, timeout=deadline, interval=1.0, what=f"a Ceilometer sample {want}", seen=lambda: lab.status())
    return taken


def image_checks(res: TrialResult) -> list[str]:
    return [c.name for c in res.checks if "image" in c.name]


@pytest.mark.smoke
def test_two_clusters_each_with_its_own_membership_and_the_guides_api_group(lab: Lab) -> None:
    """ch. 3's pair and the API nodes are two corosync clusters (each node's quorumtool lists its own cluster's
    nodes only); g_services_api holds the API VIP and the services in the guide's order, with the lab's agents;
    Keystone, Glance, Cinder and Neutron listen on the API VIP on the node that holds it (the guide's bind_host),
    nowhere else."""
    for nodes in lab.scenario.clusters.values():
        for n in nodes:
            assert pacemaker.members_are(pacemaker.corosync_members(lab.ctx, n), nodes), n
    sc = lab.scenario
    vip = sc.vip_for(next(iter(keystone.ports(sc))))
    expected = [vip.resource, "p_keystone"] + (["p_fs_glance", "p_glance-api"] if glance.enabled(sc) else [])
    expected += [primitive for a, primitive, _ in api_cluster.UWSGI_APIS if uwsgi_api.enabled(a, sc)]
    expected += [ceilometer.PRIMITIVE] if api_cluster.central_agent(lab.ctx) else []
    assert members(lab) == expected
    cib = lab.pcmk.cib_resources()
    assert 'provider="halab" type="keystone"' in cib
    active = holder(lab)
    ports = [sc.services[s].port for s in keystone.ports(sc)]
    ports += [sc.services[glance.SERVICE].port] if glance.enabled(sc) else []
    ports += [sc.services[a.service].port for a, _, _ in api_cluster.UWSGI_APIS if uwsgi_api.enabled(a, sc)]
    listening = lab.provider.run(active, "ss -Htln", timeout=15).stdout
    for port in ports:
        assert f"{vip.address}:{port} " in listening, f"nothing on {vip.address}:{port} on {active}: {listening}"
    idle = lab.provider.run(peer(lab, active), "ss -Htln", timeout=15).stdout
    assert not any(f":{p} " in idle for p in ports), f"{peer(lab, active)} listens on an API port: {idle}"


@pytest.mark.smoke
def test_openstack_cli_gets_a_token_and_stores_an_image_through_the_api_vip(lab: Lab) -> None:
    """The stock `openstack` CLI on the client node: a Fernet token through the API VIP, every endpoint at the VIP,
    Cinder's volume list (empty: no volume service runs), a Neutron network made, listed and deleted, an image
    uploaded, listed, downloaded whole (sha256) and deleted; in between, Ceilometer's central agent has polled that
    image's size through the catalog and published it to ch. 3's RabbitMQ (its sample says the file's bytes)."""
    sc = lab.scenario
    assert openstack(lab, "token issue -f value -c id").startswith("gAAAAA"), "not a Fernet token"
    urls = set(openstack(lab, "endpoint list -f value -c URL").split())
    expected = {keystone.url(sc, s) for s in keystone.ports(sc)} | ({glance.url(sc)} if glance.enabled(sc) else set())
    expected |= {uwsgi_api.endpoint(a, sc) for a, _, _ in api_cluster.UWSGI_APIS if uwsgi_api.enabled(a, sc)}
    assert urls == expected, urls
    if uwsgi_api.enabled(cinder.API, sc):
        assert openstack(lab, "volume list -f value -c ID") == ""
    if uwsgi_api.enabled(neutron.API, sc):
        net = f"cli-{time.time_ns()}"
        # a flat provider network (ML2's only type here; no tenant network type without agents), made as the admin
        made = openstack(lab, f"network create --provider-network-type flat --provider-physical-network {net} {net} "
                              "-f value -c id")  # fmt: skip
        assert net in openstack(lab, "network list -f value -c Name").split()
        openstack(lab, f"network delete {made}")
        assert net not in openstack(lab, "network list -f value -c Name").split()
    if not glance.enabled(sc):
        return
    name = f"cli-{time.time_ns()}"
    made = openstack(lab, f"image create --file /etc/services --disk-format raw --container-format bare {name} "
                          "-f value -c id")  # fmt: skip
    assert name in openstack(lab, "image list -f value -c Name").split()
    want = lab.provider.run(lab.client, "sha256sum /etc/services", check=True).stdout.split()[0]
    token = openstack(lab, "token issue -f value -c id")
    got = keystone.probe(lab.ctx, lab.client, "sha256", f"{glance.url(sc)}v2/images/{made}/file", "10", stdin=token)
    assert got == f"sha256 {want}"
    if api_cluster.central_agent(lab.ctx):
        size = float(lab.provider.run(lab.client, "stat -c %s /etc/services", check=True).stdout)
        polled = samples_after(lab, 0, f"of image {made}'s size", resource=made)
        assert {(s.meter, s.volume) for s in polled} == {("image.size", size)}, polled
    openstack(lab, f"image delete {made}")


def test_crash_of_the_active_api_node_moves_the_group_to_the_peer(lab: Lab) -> None:
    """Power cut on the node running g_services_api: the VIP and every service come up on the peer; tokens and
    images are back within the membership change + the members' start timeouts; the image uploaded before the
    crash is there after, same sha256 (the store is p_fs_glance's disk); the token issued before validates."""
    victim = holder(lab)
    survivor = peer(lab, victim)
    with lab.trial("crash-active-api") as t:
        t.fault("crash", victim)
        placed = t.settle(on=survivor, avoid=victim)
        t.clients_back()
        if api_cluster.central_agent(lab.ctx) and glance.enabled(lab.scenario):  # the image client's image is polled
            crashed = t.fault_at or 0
            first = min(s.at for s in samples_after(lab, crashed, f"polled on {survivor} after the crash"))
            lab.report.notes.append(
                f"{t.name}: Ceilometer's central agent polled again {round((first - crashed) * 1000)} ms after the "
                f"crash (on {survivor}; it polls every {ceilometer.POLL_INTERVAL_S} s, first at its start)"
            )
        t.heal("crash", victim)
        bound = move_bound_ms(lab, stop_first=False) + t.resolution_ms
        res = t.finish(bounds_ms=dict.fromkeys(api_services(lab), bound), membership_change=True)
    assert placed[group(lab)] == survivor
    crash = [e for e in res.events if e.fault == "crash" and not e.flap]
    assert {e.service for e in crash} == set(api_services(lab)), [e.service for e in crash]
    for ev in crash:
        assert ev.downtime_ms is not None and ev.downtime_ms > 0, f"{ev.service}: no gap seen: the client is blind"
        assert ev.vip_to == [survivor], f"{ev.vip} should have moved to {survivor}: {ev.vip_to}"
        assert_floor_holds(ev)
    if glance.enabled(lab.scenario):
        assert image_checks(res), "the trial ran no image check"
    report_failback(t, res, victim)
    assert_checks(res)


def test_killed_keystone_is_recovered_in_place_by_its_api_monitor(lab: Lab) -> None:
    """kill -9 of Keystone's uwsgi on the active API node: p_keystone's monitor (it asks for a token) notices,
    Pacemaker restarts it and the members after it in place, within monitor interval + timeout + their stops and
    starts; the group does not move; Pacemaker's fail count says its monitor saw the failure."""
    node = holder(lab)
    cib = lab.pcmk.cib_resources()
    deadline_s = (bounds.monitor_recovery_bound_ms(cib, "p_keystone") + move_bound_ms(lab, stop_first=True)) / 1000
    with lab.trial("kill-keystone") as t:
        t.fault("kill_service", node, service="keystone")
        until(lambda: lab.provider.run(node, "crm_failcount --query -r p_keystone -q", timeout=15).stdout.strip()
              not in ("", "0"), timeout=deadline_s, what=f"p_keystone's fail count on {node} above 0",
              seen=lambda: lab.status())  # fmt: skip
        t.settle(on=node, timeout=deadline_s)
        t.clients_back()
        res = t.finish(bounds_ms=dict.fromkeys(api_services(lab), int(deadline_s * 1000)))
    try:
        assert res.placement_after[group(lab)] == node, "a killed Keystone should be restarted where it was"
        limit, how = restart_in_place_ms(lab, node, "p_keystone")
        for svc in api_services(lab):
            out = res.outages[svc]
            assert out.downtime_ms is not None and out.downtime_ms > 0, f"{svc} never failed: the fault went unseen"
            assert out.downtime_ms <= limit + t.resolution_ms, f"{svc}: {out.downtime_ms} ms, limit {how}"
        lab.report.notes.append(f"{t.name}: the restart's limit: {how} + the history's resolution")
        assert_checks(res)
    finally:  # the next test starts with no failure recorded, whatever this one found
        lab.provider.run(node, "crm resource cleanup p_keystone", timeout=60)
        lab.settle(on=node)


def test_standby_of_the_active_api_node_migrates_in_the_groups_order(lab: Lab) -> None:
    """crm node standby: the group stops in reverse order on the node, then starts in order on the peer; back
    online, a move back (no stickiness) is measured as the heal's event."""
    node = holder(lab)
    other = peer(lab, node)
    with lab.trial("standby-api") as t:
        t.fault("standby", node)
        t.settle(on=other, avoid=node)
        t.clients_back()
        t.heal("standby", node)
        res = t.finish(bounds_ms=dict.fromkeys(api_services(lab), move_bound_ms(lab, stop_first=True)
                                               + t.resolution_ms))  # fmt: skip
    since = datetime.fromtimestamp(t.fault_at or 0).replace(year=2000)
    order = group_order(parse(lab.pcmk.pacemaker_log(), since=since), members(lab), node, other)
    lab.report.checks.append(order)
    assert order.passed, order.detail
    for ev in (e for e in res.events if e.fault == "standby" and not e.flap):
        assert_floor_holds(ev)
    report_failback(t, res, node)
    assert_checks(res)


def test_crash_of_the_mysql_node_under_the_apis_is_served_through_without_a_restart(lab: Lab) -> None:
    """Power cut on ch. 3's node holding g_mysql: the APIs fail while MySQL moves to the other node of ch. 3's
    cluster, then serve again on the same API node with no restart of theirs (no fail count, no new start); the
    tokens' and images' downtime is bounded by g_mysql's move plus the history's resolution."""
    db = api_cluster.backend(lab.ctx)
    mysql_group = lab.scenario.services["mysql"].group or ""
    victim = active_passive.wait_settled(db, db.cluster_nodes[0])[mysql_group]
    api_node = holder(lab)
    prims = ("p_keystone", "p_glance-api") if glance.enabled(lab.scenario) else ("p_keystone",)

    def failcounts() -> dict[str, str]:
        return {p: lab.provider.run(api_node, f"crm_failcount --query -r {p} -q", timeout=15).stdout.strip() or "0"
                for p in prims}  # fmt: skip

    counted = failcounts()
    starts = lab.provider.run(api_node, f"grep -c 'p_keystone_start_0' {pacemaker.LOG}", timeout=15).stdout.strip()
    db_bound = bounds.failover_bound_ms(lab.opts, db.ask("cibadmin -Q --scope resources") or "", mysql_group)
    with lab.trial("crash-mysql-under-apis") as t:
        t.fault("crash", victim)
        t.settle(avoid=victim)
        t.clients_back()
        t.heal("crash", victim)
        res = t.finish(bounds_ms=dict.fromkeys(api_services(lab), db_bound + t.resolution_ms), membership_change=True)
    assert res.placement_after[group(lab)] == api_node, "the APIs moved: MySQL's failover is not theirs"
    for ev in (e for e in res.events if e.fault == "crash" and e.service in (TOKENS, IMAGES) and not e.flap):
        assert ev.downtime_ms is not None and ev.downtime_ms > 0, f"{ev.service} never failed while MySQL moved"
    assert failcounts() == counted, f"fail counts on {api_node} {counted} -> {failcounts()}: a monitor blamed the API"
    again = lab.provider.run(api_node, f"grep -c 'p_keystone_start_0' {pacemaker.LOG}", timeout=15).stdout.strip()
    assert again == starts, f"p_keystone started again on {api_node} ({starts} -> {again} starts)"
    assert_checks(res)


def test_freeze_of_the_active_api_node_without_fencing_is_a_double_vip(lab: Lab) -> None:
    """Guide profile, no fencing: the frozen holder keeps the API VIP while its peer takes the group: the
    observer sees the VIP on both nodes and the checkers report the split-brain."""
    if lab.opts.stonith:
        pytest.skip("this profile fences: a freeze is a fenced node, not a double VIP")
    node = holder(lab)
    vip = str(lab.scenario.vip_for(next(iter(keystone.ports(lab.scenario)))).address)
    replicated = lab.ctx.drbd and glance.enabled(lab.scenario)  # Glance's store on DRBD (libvirt)
    before = drbd.split_brain_log(lab.ctx) if replicated else {}
    with lab.trial("freeze-active-api") as t:
        t.fault("freeze", node)
        t.settle(on=peer(lab, node), avoid=node)
        until(lambda: double_vip_seen(t, vip), timeout=lab.playbook.recovery_deadline_s(lab.ctx),
              what=f"{vip} on {node} (frozen) and its peer at once", seen=lambda: lab.status())  # fmt: skip
        t.heal("freeze", node)
        res = t.finish(expect_split_brain=True)
    if replicated:  # both sides were Primary: the one that does not run the group discards its writes (ch. 3's way)
        keep = res.placement_after[group(lab)]
        found = drbd.recover_split_brain(lab.ctx, glance.SERVICE, keep, before)
        seen = "; ".join(f"{n}: {lines[-1]}" for n, lines in found.items() if lines) or "none (one side never wrote)"
        lab.report.notes.append(f"freeze-active-api: DRBD {glance.SERVICE} split-brain: {seen}; recovered onto {keep}")
    assert double_vip_seen(t, vip)
    # the trial's split-brain check passes when the checkers found it in the fault's window, and only there
    assert res.check("split-brain").passed, res.check("split-brain").detail
    assert_checks(res)


@pytest.mark.parametrize("api", [primitive for _, primitive, _ in api_cluster.UWSGI_APIS])
def test_the_uwsgi_api_agents_pass_ocf_tester_and_their_monitor_asks_for_a_list(lab: Lab, api: str) -> None:
    """ocf:halab:cinder-api and ocf:halab:neutron-server on the API node that does not run the group, on that node's
    own address (uwsgi binds what `listen` says) and a pid file of their own (Pacemaker's resource stays where it
    is): ocf-tester passes (meta-data, validate-all, monitor 7, start, monitor 0, starts and stops twice); with the
    started service frozen (SIGSTOP), monitor says 1 and names the URL it asked, thawed 0, stopped 7."""
    sc = lab.scenario
    role = next(a for a, primitive, _ in api_cluster.UWSGI_APIS if primitive == api)
    if not uwsgi_api.enabled(role, sc):
        pytest.skip(f"the scenario runs no {role.service}")
    agent = api.removeprefix("p_")
    node = peer(lab, holder(lab))
    address = str(sc.nodes[node].addresses[sc.vip_for(role.service).network])
    port = sc.services[role.service].port
    params = ocf_agents.uwsgi_params(lab.ctx, role, agent) | {
        "listen": f"{address}:{port}", "url": f"http://{address}:{port}/", "pid": f"/run/halab/ocf-tester-{agent}.pid"
    }  # fmt: skip
    deadline = lab.playbook.recovery_deadline_s(lab.ctx)
    try:
        r = ocf_tester(lab, node, agent, params, timeout=deadline)
        assert r.ok and "passed all tests" in r.stdout, f"ocf-tester {agent} on {node}: {r.stdout[-1500:]}"
        # a recurring monitor, no probe; a frozen service fails its first question (longer on an emulated CPU)
        quick = params | {"probe_timeout": str(2 * pacemaker.timeout_scale(lab.ctx)), "CRM_meta_interval": "10000"}
        assert ocf_action(lab, node, agent, "start", quick, deadline).rc == 0
        pid = lab.provider.run(node, f"cat {params['pid']}", check=True).stdout.strip()
        lab.provider.run(node, f"kill -STOP -{pid}", check=True)  # its process group: master and worker
        frozen = ocf_action(lab, node, agent, "monitor", quick, deadline)
        lab.provider.run(node, f"kill -CONT -{pid}", check=True)
        assert frozen.rc == 1, f"monitor of a frozen {agent}: rc {frozen.rc} ({frozen.stderr[-300:]})"
        assert "ocf-exit-reason:" in frozen.stderr and params["url"] in frozen.stderr, frozen.stderr[-300:]
        until(lambda: ocf_action(lab, node, agent, "monitor", quick, deadline).rc == 0, timeout=deadline,
              what=f"{agent}'s monitor to pass once thawed")  # fmt: skip
        assert ocf_action(lab, node, agent, "stop", quick, deadline).rc == 0
        assert ocf_action(lab, node, agent, "monitor", quick, deadline).rc == 7
    finally:
        ocf_action(lab, node, agent, "stop", params, deadline)


def test_the_central_agent_passes_ocf_tester_and_its_monitor_fails_a_frozen_agent(lab: Lab) -> None:
    """ocf:halab:ceilometer-agent-central on the API node that does not run the group, with a pid file of its own
    (Pacemaker's resource stays where it is): ocf-tester passes (meta-data, validate-all, monitor 7, start,
    monitor 0, starts and stops twice); with the started agent frozen (SIGSTOP), monitor says 1 and why, thawed
    0, stopped 7."""
    if not api_cluster.central_agent(lab.ctx):
        pytest.skip("the scenario runs no Ceilometer central agent")
    agent, node = ceilometer.AGENT, peer(lab, holder(lab))
    params = ocf_agents.ceilometer_params() | {"pid": f"/run/halab/ocf-tester-{agent}.pid"}
    deadline = lab.playbook.recovery_deadline_s(lab.ctx)
    try:
        r = ocf_tester(lab, node, agent, params, timeout=deadline)
        assert r.ok and "passed all tests" in r.stdout, f"ocf-tester {agent} on {node}: {r.stdout[-1500:]}"
        quick = params | {"CRM_meta_interval": "30000"}  # a recurring monitor, no probe
        assert ocf_action(lab, node, agent, "start", quick, deadline).rc == 0
        pid = lab.provider.run(node, f"cat {params['pid']}", check=True).stdout.strip()
        lab.provider.run(node, f"kill -STOP -{pid}", check=True)  # its process group: master and worker
        frozen = ocf_action(lab, node, agent, "monitor", quick, deadline)
        lab.provider.run(node, f"kill -CONT -{pid}", check=True)
        assert frozen.rc == 1 and "ocf-exit-reason:" in frozen.stderr, f"rc {frozen.rc}: {frozen.stderr[-300:]}"
        assert ocf_action(lab, node, agent, "monitor", quick, deadline).rc == 0
        assert ocf_action(lab, node, agent, "stop", quick, deadline).rc == 0
        assert ocf_action(lab, node, agent, "monitor", quick, deadline).rc == 7
    finally:
        ocf_action(lab, node, agent, "stop", params, deadline)
