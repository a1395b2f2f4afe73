from __future__ import annotations

import pytest

from lab.checks import lost_messages, lost_writes
from lab.checks.durability import lost_api_messages, unconsumed
from lab.history import History, Op
from lab.workload.amqp import api_message_id

pytestmark = pytest.mark.unit


def op(t: float, type: str, f: str, value: int, service: str) -> Op:
    return Op(t, f"{service}-{f}", type, f, value, service)


def writes(outcomes: dict[int, str]) -> History:
    h = History()
    for i, (value, type) in enumerate(outcomes.items()):
        h.extend([op(i, "invoke", "write", value, "mysql"), op(i + 0.5, type, "write", value, "mysql")])
    return h


def test_all_acknowledged_writes_present_passes() -> None:
    h = writes({1: "ok", 2: "ok", 3: "info", 4: "info", 5: "fail"})
    c = lost_writes(h, {1, 2, 3})
    assert c.passed and c.name == "lost-writes:mysql"
    assert "all 2 acknowledged writes present" in c.detail
    assert "indeterminate: 1 present, 1 absent" in c.detail


def test_lost_write_fails() -> None:
    h = writes({1: "ok", 2: "ok", 3: "ok"})
    c = lost_writes(h, {1, 3})
    assert not c.passed
    assert c.detail.startswith("1 of 3 acknowledged writes lost: 2;")


def test_lost_ids_are_capped_at_ten() -> None:
    h = writes({i: "ok" for i in range(1, 31)})
    c = lost_writes(h, set(range(1, 11)))
    assert not c.passed and "20 of 30" in c.detail
    assert "11, 12, 13, 14, 15, 16, 17, 18, 19, 20, ... (+10 more)" in c.detail


def test_failed_write_found_present_is_reported_not_failed() -> None:
    c = lost_writes(writes({1: "ok", 2: "fail"}), {1, 2})
    assert c.passed and "1 failed but present: 2" in c.detail


def test_other_services_writes_are_ignored() -> None:
    h = writes({1: "ok"})
    h.append(op(9, "ok", "write", 7, "galera"))
    assert lost_writes(h, {1}).passed
    assert not lost_writes(h, {1}, service="galera").passed


def rabbit(published: dict[int, str], consumed: list[int]) -> History:
    h = History()
    for i, (value, type) in enumerate(published.items()):
        h.append(op(i, "invoke", "publish", value, "rabbitmq"))
        h.append(op(i + 0.1, type, "publish", value, "rabbitmq"))
    h.extend(op(100 + i, "ok", "consume", v, "rabbitmq") for i, v in enumerate(consumed))
    return h


def test_confirmed_messages_consumed_or_drained_pass() -> None:
    h = rabbit({1: "ok", 2: "ok", 3: "ok", 4: "info", 5: "fail"}, consumed=[1, 2, 2])
    c = lost_messages(h, drained_ids={3})
    assert c.passed and c.name == "lost-messages:rabbitmq"
    assert "all 3 confirmed messages delivered (2 consumed during the run, 1 drained after)" in c.detail
    assert "indeterminate: 0 present, 1 absent" in c.detail


def test_lost_confirmed_message_fails() -> None:
    h = rabbit({1: "ok", 2: "ok", 3: "ok"}, consumed=[1])
    c = lost_messages(h, drained_ids={2})
    assert not c.passed and c.detail.startswith("1 of 3 confirmed messages lost: 3;")


def test_unconfirmed_message_may_vanish() -> None:
    h = rabbit({1: "ok", 2: "info", 3: "fail"}, consumed=[1])
    assert lost_messages(h, drained_ids=set()).passed


def test_consume_invokes_do_not_count_as_received() -> None:
    h = rabbit({1: "ok"}, consumed=[])
    h.append(op(50, "invoke", "consume", 1, "rabbitmq"))
    assert not lost_messages(h, set()).passed


def paused_run(consumed_before: int, published: int, pause_at: float, fault_at: float) -> History:
    """Messages 1..published confirmed one per second (message i at time i), the first `consumed_before` consumed
    right after; the consumer pauses at `pause_at`, the nemesis applies a fault at `fault_at`."""
    h = History()
    for i in range(1, published + 1):
        h.extend([op(i - 0.05, "invoke", "publish", i, "rabbitmq"), op(i, "ok", "publish", i, "rabbitmq")])
    h.extend(op(i + 0.5, "ok", "consume", i, "rabbitmq") for i in range(1, consumed_before + 1))
    h.append(Op(pause_at, "rabbitmq-consumer", "info", "pause", service="rabbitmq"))
    h.append(Op(fault_at, "nemesis", "info", "fault", {"fault": "crash", "target": "node1"}))
    return h.sorted()


def test_the_backlog_at_the_fault_is_counted_and_must_be_drained() -> None:
    # 10 consumed, paused at 10.6; messages 11..70 confirmed by the fault at 70.5 (60 queued), 71..80 after it
    h = paused_run(consumed_before=10, published=80, pause_at=10.6, fault_at=70.5)
    c = lost_messages(h, drained_ids=set(range(11, 81)), backlog=50)
    assert c.passed, c.detail
    assert c.detail.startswith(
        "all 80 confirmed messages delivered (10 consumed during the run, 70 drained after; "
        "60 in the queue at the fault, all drained after recovery)"
    )


def test_a_broker_back_with_an_empty_queue_fails() -> None:
    h = paused_run(consumed_before=10, published=80, pause_at=10.6, fault_at=70.5)
    c = lost_messages(h, drained_ids=set(range(71, 81)), backlog=50)  # only what came after the fault
    assert not c.passed
    assert c.detail.startswith("60 of 80 confirmed messages lost: 11, 12,")
    assert "60 in the queue at the fault, 60 of them missing after it" in c.detail


def test_too_small_a_backlog_fails_even_when_nothing_is_lost() -> None:
    # the fault came 5 s after the pause: 5 queued, fewer than the 50 asked for: nothing was at stake
    h = paused_run(consumed_before=10, published=30, pause_at=10.6, fault_at=15.5)
    c = lost_messages(h, drained_ids=set(range(11, 31)), backlog=50)
    assert not c.passed
    assert c.detail.startswith("only 5 confirmed messages were in the queue at the fault, fewer than the 50 held")
    assert "all 30 confirmed messages delivered" in c.detail
    assert lost_messages(h, drained_ids=set(range(11, 31)), backlog=5).passed


def test_a_backlog_asked_for_without_a_pause_fails() -> None:
    h = rabbit({1: "ok", 2: "ok"}, consumed=[1])
    h.append(Op(50, "nemesis", "info", "fault", {"fault": "crash", "target": "node1"}))
    c = lost_messages(h, drained_ids={2}, backlog=50)
    assert not c.passed and c.detail.startswith("the consumer never paused: no backlog of 50")
    assert lost_messages(h, drained_ids={2}).passed  # no backlog asked for (no fault applied by the trial): as before


def test_backlog_messages_consumed_after_a_resume_count_as_received() -> None:
    h = paused_run(consumed_before=10, published=80, pause_at=10.6, fault_at=70.5)
    h.append(Op(90, "rabbitmq-consumer", "info", "resume", service="rabbitmq"))
    h.extend(op(90 + i / 100, "ok", "consume", i, "rabbitmq") for i in range(11, 21))
    c = lost_messages(h.sorted(), drained_ids=set(range(21, 81)), backlog=50)
    assert c.passed, c.detail
    assert "60 in the queue at the fault, all received after it (50 drained, 10 consumed after the resume)" in c.detail


def test_unconsumed_is_what_the_queue_must_hold_at_a_time() -> None:
    h = paused_run(consumed_before=10, published=80, pause_at=10.6, fault_at=70.5)
    assert unconsumed(h, at=70.5) == set(range(11, 71))
    assert unconsumed(h, at=5.2) == {5}  # 1..4 consumed by then, 5 confirmed at 5, consumed at 5.5
    assert unconsumed(h) == set(range(11, 81))
    assert unconsumed(h, service="other") == set()


def test_every_acknowledged_api_write_has_its_message_in_the_queue() -> None:
    h = History()
    for i, (value, type) in enumerate({7: "ok", 8: "ok", 9: "info"}.items()):
        h.extend([op(i, "invoke", "write", value, "api"), op(i + 0.5, type, "write", value, "api")])
    ok = lost_api_messages(h, {7, 8, 41})  # 41: an earlier trial's message, drained now: fine
    assert ok.passed and ok.name == "lost-messages:api" and "all 2 acknowledged" in ok.detail
    lost = lost_api_messages(h, {7, 9})
    assert not lost.passed and "1 of 2" in lost.detail and "8" in lost.detail


def test_the_api_stand_ins_message_body_gives_its_row_id() -> None:
    assert api_message_id(b'{"id": 3000012, "port": 8774, "node": "controller1"}') == 3000012
