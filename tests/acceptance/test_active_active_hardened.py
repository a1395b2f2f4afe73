"""Guide ch. 6-9 under the `hardened` profile: keepalived nopreempt with unicast peers, RabbitMQ quorum queues,
HAProxy dropping the sessions to a server it marks DOWN."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab.fixtures import assert_checks, broker_loss_trial, make_lab
from lab.session import Lab
from lab.wait import holds
from provision import haproxy, keepalived, keystone
from provision.active_active import role_nodes, vip_holders
from tests.acceptance.openstack_cli import crash_keeps_tokens_and_images

pytestmark = pytest.mark.active_active


@pytest.fixture(scope="module")
def lab(provider: str) -> Iterator[Lab]:
    yield from make_lab("active-active", "hardened", provider)


def test_vrrp_is_unicast_and_does_not_preempt(lab: Lab) -> None:
    for node in role_nodes(lab.ctx, "keepalived"):
        conf = lab.hosts[node].file(keepalived.CONFIG)
        assert conf.contains("nopreempt") and conf.contains("unicast_peer"), conf.content_string


def test_killed_haproxy_faults_the_instance_and_the_vip_stays_where_it_went(lab: Lab) -> None:
    m = lab.settle()["vip"]
    b = next(n for n in role_nodes(lab.ctx, "keepalived") if n != m)
    timers = keepalived.vrrp_bounds_ms(lab.opts)
    bound = int(timers["chk_haproxy_ms"])
    with lab.trial("kill-haproxy-master-hardened") as t:
        bound += t.resolution_ms
        t.fault("kill_service", m, service="haproxy")
        t.settle(on=b, avoid=m, timeout=2 * bound / 1000)
        t.clients_back()
        t.heal("kill_service", m, service="haproxy")
        # nopreempt: the healed node must not take the VIP back (no second outage). Watch a master-down interval
        # twice over, the time a preempting node would need, with the clients and the observer still running.
        holds(
            lambda: vip_holders(lab.ctx) == [b],
            duration=2 * timers["master_down_ms"] / 1000,
            what=f"the VIP to stay on {b}",
            seen=lambda: vip_holders(lab.ctx),
        )
        res = t.finish(bounds_ms={"api": bound, "galera": bound})
    back = [e for e in res.events if e.fault.startswith("heal:") and e.downtime_ms]
    assert not back, f"the heal cost the clients something though nothing may move back: {back}"
    assert_checks(res)


def test_quorum_queue_survives_the_loss_of_a_broker(lab: Lab) -> None:
    res = broker_loss_trial(lab, "kill-rabbitmq-quorum")
    # what the broker made of the workload's queue, not what the workload asked for
    broker = role_nodes(lab.ctx, "rabbitmq")[1]
    queues = lab.provider.run(broker, f"rabbitmqctl -n rabbit@{broker} -q list_queues name type", check=True).stdout
    assert any(line.split()[1:] == ["quorum"] for line in queues.splitlines() if line.startswith("halab-")), queues
    assert_checks(res)


def test_crash_of_galeras_active_server_stalls_keystone_only_until_haproxy_marks_it_down(lab: Lab) -> None:
    """The guide's HAProxy keeps the sessions to a crashed server until `timeout server` (1m): Keystone's pooled
    database connections to galera_cluster's active server hang that long (test_active_active). With
    `on-marked-down shutdown-sessions` they are dropped as HAProxy marks the server DOWN: tokens, validations and
    images come back within HAProxy's silent-server bound alone."""
    if not keystone.enabled(lab.scenario):
        pytest.skip(f"{lab.scenario.path} balances no Keystone service")
    galera = next(li for li in haproxy.listens(lab.scenario) if li.service == "galera")
    node = next(s.name for s in galera.servers if not s.backup)
    front = lab.settle()["vip"]
    # what the running HAProxy was given, not only what the profile says: every server line drops its sessions
    cfg = lab.provider.run(front, f"cat {haproxy.CONFIG}", check=True).stdout
    servers = [ln for ln in cfg.splitlines() if ln.strip().startswith("server ")]
    assert servers and all(ln.endswith(" on-marked-down shutdown-sessions") for ln in servers), servers
    with lab.trial("crash-galera-active-hardened") as t:
        res = crash_keeps_tokens_and_images(lab, t, node, front)
    assert_checks(res)
