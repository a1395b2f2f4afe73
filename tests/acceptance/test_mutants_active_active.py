"""Proof that the active/active tests bite (issue 10 item 8): the cluster is made to misbehave on purpose and the
check the acceptance tests assert must then fail (lab.fixtures.assert_caught turns that into one passing
`mutant:<name>` check). Each mutant is one trial on the guide profile.

- lost-write: an acknowledged row deleted from Galera behind the clients' back -> lost-writes:galera fails;
- double-vip: the front VIP added by hand on the keepalived BACKUP -> vip-holders fails;
- purged-queue: the brokers' (mirrored) workload queue emptied behind the clients' back while the consumer is paused
  for a fault -> lost-messages:rabbitmq fails;
- purged-api-queue: the queue the API publishes each written row to emptied -> lost-messages:api fails.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab.fixtures import assert_caught, double_vip_by_hand, make_lab
from lab.session import Lab, Trial
from lab.wait import until
from provision import api, rabbitmq_cluster
from provision.active_active import role_nodes, vip_name

pytestmark = [pytest.mark.active_active, pytest.mark.mutants]


@pytest.fixture(scope="module")
def lab(provider: str) -> Iterator[Lab]:
    yield from make_lab("active-active", "guide", provider)


def acknowledged(lab: Lab, t: Trial, service: str, f: str, count: int = 10) -> None:
    until(
        lambda: t.runner_alive() and len(t.history().select(service=service, type="ok", f=f)) >= count,
        timeout=lab.playbook.recovery_deadline_s(lab.ctx),
        what=f"{count} acknowledged {service} {f}s",
        seen=lambda: (t.dir / "workload.log").read_text()[-500:],
    )


def purge(lab: Lab, queue: str) -> None:
    """Empty `queue` on the first broker (mirrored to all: ha-all), as an operator's mistake would."""
    broker = role_nodes(lab.ctx, "rabbitmq")[0]
    cmd = f"rabbitmqctl -n {rabbitmq_cluster.nodename(broker)} -q purge_queue {queue}"
    r = lab.provider.run(broker, cmd, timeout=60)
    assert r.ok, f"could not purge {queue} on {broker}: {r.stderr}"


def test_a_deleted_acknowledged_write_fails_lost_writes(lab: Lab) -> None:
    node = role_nodes(lab.ctx, "galera")[0]
    with lab.trial("mutant-lost-write-galera") as t:
        acknowledged(lab, t, "galera", "write")
        victim = int(t.history().select(service="galera", type="ok", f="write")[3].value)
        r = lab.provider.run(node, f"mysql halab -e 'DELETE FROM writes WHERE id = {victim}'", timeout=30)
        assert r.ok, f"could not delete row {victim} on {node}: {r.stderr}"
        res = t.finish()
    assert_caught(lab, res, "lost-write", "lost-writes:galera")


def test_the_front_vip_added_by_hand_on_the_backup_fails_vip_holders(lab: Lab) -> None:
    vip = lab.scenario.vips[vip_name(lab.ctx)]
    master = lab.settle()["vip"]
    backup = next(n for n in role_nodes(lab.ctx, "keepalived") if n != master)
    with lab.trial("mutant-double-vip-vrrp") as t:
        double_vip_by_hand(lab, t, vip, backup)
        res = t.finish()
    assert_caught(lab, res, "double-vip", "vip-holders")


def test_a_queue_purged_during_a_fault_fails_lost_messages(lab: Lab) -> None:
    node = role_nodes(lab.ctx, "memcached")[-1]
    with lab.trial("mutant-purged-queue-aa") as t:
        # any fault will do: Trial.fault pauses the consumer and queues the backlog first; this one touches no broker
        t.fault("kill_service", node, service="memcached")
        purge(lab, t.cfg.queue)
        t.heal("kill_service", node, service="memcached")
        res = t.finish()
    assert_caught(lab, res, "purged-queue", "lost-messages:rabbitmq")


def test_the_apis_queue_purged_fails_its_lost_messages(lab: Lab) -> None:
    with lab.trial("mutant-purged-api-queue") as t:
        acknowledged(lab, t, "api", "write")
        purge(lab, api.QUEUE)
        res = t.finish()
    assert_caught(lab, res, "purged-api-queue", "lost-messages:api")
