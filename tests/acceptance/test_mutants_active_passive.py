"""Proof that the active/passive tests bite (issue 10 item 8): the cluster is made to misbehave on purpose and the
check the acceptance tests assert must then fail. Each mutant is one trial on the guide profile; its failing checks
are taken out of the report and replaced by one `mutant:<name>` check that passes only when the check failed.

- lost-write: an acknowledged row deleted behind the clients' back -> lost-writes fails;
- double-vip: the MySQL VIP added by hand on the passive node -> vip-holders fails;
- slow-failover: the survivor banned from the group for longer than the crash's limit -> the floor/limit check fails;
- purged-queue: the broker's queue emptied behind the clients' back after an orderly move -> lost-messages fails
  (the backlog the paused consumer left in the queue is gone).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from lab import bounds
from lab.fixtures import assert_caught, double_vip_by_hand, make_lab
from lab.floors import LIMIT_FACTOR
from lab.session import Lab
from lab.wait import until

pytestmark = [pytest.mark.active_passive, pytest.mark.mutants]


@pytest.fixture(scope="module")
def lab(provider: str) -> Iterator[Lab]:
    yield from make_lab("active-passive", "guide", provider)


def mysql_node(lab: Lab) -> str:
    return lab.settle()[lab.scenario.services["mysql"].group or ""]


def peer(lab: Lab, node: str) -> str:
    return next(n for n in lab.cluster_nodes if n != node)


def test_a_deleted_acknowledged_write_fails_lost_writes(lab: Lab) -> None:
    node = mysql_node(lab)
    with lab.trial("mutant-lost-write") as t:
        until(
            lambda: t.runner_alive() and len(t.history().select(service="mysql", type="ok", f="write")) >= 10,
            timeout=lab.playbook.recovery_deadline_s(lab.ctx),
            what="ten acknowledged writes",
            seen=lambda: (t.dir / "workload.log").read_text()[-500:],
        )
        victim = t.history().select(service="mysql", type="ok", f="write")[3].value
        r = lab.provider.run(node, f"mysql halab -e 'DELETE FROM writes WHERE id = {int(victim)}'", timeout=30)
        assert r.ok, f"could not delete row {victim} on {node}: {r.stderr}"
        res = t.finish()
    assert_caught(lab, res, "lost-write", "lost-writes:mysql")


def test_a_vip_added_by_hand_on_the_passive_node_fails_vip_holders(lab: Lab) -> None:
    node = mysql_node(lab)
    other = peer(lab, node)
    with lab.trial("mutant-double-vip") as t:
        double_vip_by_hand(lab, t, lab.scenario.vip_for("mysql"), other)
        res = t.finish()
    assert_caught(lab, res, "double-vip", "vip-holders")


def test_a_failover_held_back_past_its_limit_fails_the_floor_check(lab: Lab) -> None:
    victim = mysql_node(lab)
    survivor = peer(lab, victim)
    grp = lab.scenario.services["mysql"].group or ""
    # longer than the crash's limit can be: LIMIT_FACTOR x (membership + 2 s of member ops and start) + resolution
    with lab.trial("mutant-slow-failover") as t:
        hold_s = (LIMIT_FACTOR * (bounds.membership_ms(lab.opts) + 2000) + t.resolution_ms) / 1000
        ban = lab.provider.run(survivor, f"crm_resource --ban --resource {grp} --node {survivor}", timeout=30)
        assert ban.ok, ban.stderr
        try:
            t.fault("crash", victim)
            time.sleep(hold_s)  # the mutation itself: a cluster that waits this long before it moves the group
        finally:
            lab.provider.run(survivor, f"crm_resource --clear --resource {grp}", timeout=30)
        t.settle(on=survivor, avoid=victim)
        t.heal("crash", victim)
        res = t.finish(membership_change=True)
    assert_caught(lab, res, "slow-failover", "downtime:mysql within its floor and limit")


def test_a_queue_purged_behind_the_clients_back_fails_lost_messages(lab: Lab) -> None:
    from provision import rabbitmq

    if "rabbitmq" not in lab.playbook.services(lab.ctx):
        pytest.skip("LAB_SERVICES leaves RabbitMQ out of this run")
    grp = lab.scenario.services["rabbitmq"].group or ""
    node = lab.settle()[grp]
    other = peer(lab, node)
    with lab.trial("mutant-purged-queue") as t:
        t.fault("standby", node)  # the consumer pauses and a backlog queues first (Trial.fault)
        t.settle(on=other, avoid=node)
        purge = lab.provider.run(other, f"rabbitmqctl {rabbitmq.NODE} -q purge_queue {t.cfg.queue}", timeout=60)
        assert purge.ok, f"could not purge {t.cfg.queue} on {other}: {purge.stderr}"
        t.heal("standby", node)
        res = t.finish()
    assert_caught(lab, res, "purged-queue", "lost-messages:rabbitmq")
