"""Trial.fault holds a backlog before the trial's first fault: it creates the consumer's pause flag, waits for the
consumer's `pause` op, then for `backlog` confirmed and unconsumed messages, and only then applies the fault. A fake
workload (threads writing the history files a real one would) stands in for the client node."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from lab.checks.durability import unconsumed
from lab.faults import Fault
from lab.history import INFO, OK, History, JsonlRecorder
from lab.trial import Trial
from lab.wait import WaitTimeout
from lab.workload.config import PAUSE_FLAG, Endpoint, WorkloadConfig

pytestmark = pytest.mark.unit


@dataclasses.dataclass(frozen=True, kw_only=True)
class Poke(Fault):
    """A fault that does nothing but say when it was applied."""

    name: ClassVar[str] = "poke"
    help: ClassVar[str] = "a test's fault"
    applied_at: ClassVar[list[float]] = []

    def check(self, scenario: Any) -> None:
        pass

    def resolve(self, env: Any) -> Poke:
        return self

    def apply(self, env: Any) -> None:
        Poke.applied_at.append(time.time())


class FakeWorkload:
    """A publisher confirming one message every `every` s, and a consumer that takes each at once until the flag
    appears, then records its pause (after `pause_delay` s) and takes nothing more."""

    def __init__(self, out: Path, every: float = 0.002, pause_delay: float = 0.0, pauses: bool = True) -> None:
        self.out, self.every, self.pause_delay, self.pauses = out, every, pause_delay, pauses
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True)]

    def run(self) -> None:
        pub = JsonlRecorder(self.out / "rabbitmq-publisher.jsonl", "rabbitmq-publisher")
        con = JsonlRecorder(self.out / "rabbitmq-consumer.jsonl", "rabbitmq-consumer")
        i, paused = 0, False
        while not self.stop.wait(self.every):
            i += 1
            pub.record(OK, "publish", i, service="rabbitmq")
            if not paused and (self.out / PAUSE_FLAG).exists():
                if not self.pauses:
                    continue
                time.sleep(self.pause_delay)  # the consumer's own reaction time, in the fake
                con.record(INFO, "pause", service="rabbitmq")
                paused = True
            if not paused:
                con.record(OK, "consume", i, service="rabbitmq")

    def __enter__(self) -> FakeWorkload:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=5)


def trial(out: Path, amqp: bool = True, **cfg: Any) -> Trial:
    t = Trial.__new__(Trial)  # what fault() uses of a trial, without a lab
    t.lab = SimpleNamespace(scenario=None, report=SimpleNamespace(timings_s={}))  # type: ignore[assignment]
    t.dir, t.proc, t.name = out, None, "poke"
    ep = Endpoint("rabbitmq", "b1", 5672) if amqp else None
    t.cfg = WorkloadConfig(out_dir=str(out), run_id=1, amqp=ep, **cfg)
    t.nemesis = JsonlRecorder(out / "nemesis.jsonl", "nemesis")
    t.applied, t.fault_log, t.faults, t.heal_log, t.fault_at = [], [], [], [], None
    t.held_backlog = 0
    return t


def test_the_first_fault_waits_for_the_pause_and_the_backlog(tmp_path: Path) -> None:
    t = trial(tmp_path, backlog=40)
    with FakeWorkload(tmp_path):
        at = t.fault(Poke(target="node1"))
        second = t.fault(Poke(target="node2"))
    h = History.load(*tmp_path.glob("*.jsonl"))
    pause = h.select(f="pause")
    assert len(pause) == 1 and (tmp_path / PAUSE_FLAG).exists()
    assert 0 < t.lab.report.timings_s["backlog:poke"] < at - pause[0].time + 0.5  # what holding it cost
    assert pause[0].time < at < Poke.applied_at[-2]  # paused, then the fault's record, then the fault itself
    assert len(unconsumed(h, at=at)) >= 40  # the backlog was there when the fault was recorded
    assert not h.select(f="consume", since=pause[0].time)
    # the second fault does not wait again: the consumer stays paused for the whole trial
    assert second - at < 0.5
    assert t.held_backlog == 40  # what finish's lost-messages check will require at the fault


def test_a_pause_lifted_by_the_test_is_not_taken_again_by_a_later_fault(tmp_path: Path) -> None:
    t = trial(tmp_path, backlog=10)
    with FakeWorkload(tmp_path):
        t.fault(Poke(target="node1"))
        t.cfg.pause_flag.unlink()  # e.g. broker_loss_trial: the consumer takes the backlog from another broker
        t.fault(Poke(target="node2"))
    assert not t.cfg.pause_flag.exists()


def test_without_amqp_or_a_backlog_the_fault_is_applied_at_once(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    for t in (trial(tmp_path / "a", amqp=False), trial(tmp_path / "b", backlog=0)):
        asked = time.time()
        at = t.fault(Poke(target="node1"))
        assert at - asked < 0.5 and not (t.dir / PAUSE_FLAG).exists()
        assert t.fault_log and t.fault_at == at and not t.held_backlog


def test_a_consumer_that_never_pauses_fails_the_fault_before_it_is_applied(tmp_path: Path) -> None:
    # op_timeout 0.1 s: the pause may take a poll (0.2 s) and one op (0.3 s)
    t = trial(tmp_path, backlog=10, op_timeout_s=0.1)
    before = len(Poke.applied_at)
    with FakeWorkload(tmp_path, pauses=False), pytest.raises(WaitTimeout, match="the AMQP consumer to pause"):
        t.fault(Poke(target="node1"))
    assert len(Poke.applied_at) == before and not t.fault_log  # never applied, nothing recorded
    assert not History.load(tmp_path / "nemesis.jsonl").ops


def test_a_backlog_that_does_not_build_up_fails_within_its_deadline(tmp_path: Path) -> None:
    # one message every 0.1 s, 20 wanted, but only 20 x (interval 0.001 + stall 0.05) = 1.02 s allowed
    t = trial(tmp_path, backlog=20, op_timeout_s=0.1, interval_s=0.001)
    t0 = time.monotonic()
    with FakeWorkload(tmp_path, every=0.1), pytest.raises(WaitTimeout, match="20 confirmed messages queued"):
        t.fault(Poke(target="node1"))
    assert time.monotonic() - t0 == pytest.approx(t.cfg.backlog_s, abs=0.5)
