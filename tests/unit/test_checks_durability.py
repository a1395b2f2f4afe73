from __future__ import annotations

import pytest

from lab.checks import lost_messages, lost_writes
from lab.history import History, Op

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
