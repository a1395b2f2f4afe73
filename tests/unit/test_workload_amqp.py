"""The AMQP consumer's pause: while the trial's flag exists it takes nothing (a delivery that came after the flag
goes back to the queue), stays connected, reconnecting to another broker when one goes, and says so in the
history; without the flag it consumes as before. Fakes stand in for pika."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lab.history import History, JsonlRecorder
from lab.workload import amqp
from lab.workload.config import PAUSE_FLAG, Endpoint, WorkloadConfig

pytestmark = pytest.mark.unit


Step = Callable[[], None]


def delivery(i: int) -> tuple[Any, Any, bytes]:
    return SimpleNamespace(delivery_tag=i), None, str(i).encode()


class FakeConnection:
    """One connection's script: `deliveries` are what consume yields (a callable is run instead: the test's side
    effect), `idle` what each process_data_events of a paused consumer does; both yield nothing once used up."""

    def __init__(self, broker: FakeBroker, deliveries: list[Any], idle: list[Step]) -> None:
        self.broker, self.deliveries, self.idle = broker, deliveries, idle
        self.is_open = True

    def channel(self) -> FakeConnection:  # the channel's few methods live here too
        return self

    def queue_declare(self, queue: str, *, durable: bool = False, arguments: dict[str, Any] | None = None) -> Any:
        return SimpleNamespace(method=SimpleNamespace(message_count=self.broker.queued))

    def consume(self, queue: str, *, inactivity_timeout: float | None = None) -> Iterator[tuple[Any, Any, Any]]:
        while True:
            step = self.deliveries.pop(0) if self.deliveries else (None, None, None)
            if callable(step):
                step()
                continue
            yield step

    def basic_ack(self, delivery_tag: int = 0) -> None:
        self.broker.acked.append(delivery_tag)

    def process_data_events(self, time_limit: float | None = 0) -> None:
        if self.idle:
            self.idle.pop(0)()

    def close(self) -> None:
        self.is_open = False
        self.broker.closed.append(self)
        log = self.broker.log
        self.broker.ops_at_close.append(len(log.read_text().splitlines()) if log.exists() else 0)


class FakeBroker:
    """Each connect reaches the next scripted (broker address, deliveries, idle steps)."""

    def __init__(self, *scripts: tuple[str, list[Any], list[Step]]) -> None:
        self.scripts = list(scripts)
        self.connections: list[FakeConnection] = []
        self.acked: list[int] = []
        self.closed: list[FakeConnection] = []
        self.ops_at_close: list[int] = []  # how many ops the consumer had recorded when each connection closed
        self.log = Path("/nonexistent")
        self.queued = 7

    def connect(self, ep: Endpoint, timeout: float) -> tuple[FakeConnection, str]:
        host, deliveries, idle = self.scripts.pop(0)
        self.connections.append(FakeConnection(self, deliveries, idle))
        return self.connections[-1], host


def config(tmp_path: Path) -> WorkloadConfig:
    ep = Endpoint("rabbitmq", "b1", 5672, hosts=["b1", "b2"])
    return WorkloadConfig(out_dir=str(tmp_path), run_id=1, amqp=ep, interval_s=0.001, backlog=3)


def run_consumer(tmp_path: Path, broker: FakeBroker, stop: threading.Event, monkeypatch: pytest.MonkeyPatch) -> History:
    monkeypatch.setattr(amqp, "connect", broker.connect)
    broker.log = tmp_path / "rabbitmq-consumer.jsonl"
    rec = JsonlRecorder(broker.log, "rabbitmq-consumer")
    amqp.consumer(config(tmp_path), rec, stop)
    rec.close()
    return History.load(tmp_path / "rabbitmq-consumer.jsonl")


def test_the_consumer_pauses_reconnects_while_paused_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag, stop = tmp_path / PAUSE_FLAG, threading.Event()

    def lost() -> None:
        raise ConnectionError("broker b1 gone")

    broker = FakeBroker(
        ("b1", [delivery(1), delivery(2), flag.touch, delivery(3)], []),  # the delivery after the flag is not taken
        ("b1", [], [lost]),  # paused on b1, which goes
        ("b2", [], [lambda: None, flag.unlink]),  # reconnected to b2; then the trial lifts the pause
        ("b1", [delivery(3), stop.set], []),  # consuming again: 3 was requeued when the first connection closed
    )
    h = run_consumer(tmp_path, broker, stop, monkeypatch)
    assert [(o.type, o.f, o.value) for o in h] == [
        ("ok", "consume", 1),
        ("ok", "consume", 2),
        ("info", "pause", None),
        ("info", "queued", {"broker": "b1", "messages": 7}),
        ("fail", "queued", None),
        ("info", "queued", {"broker": "b2", "messages": 7}),
        ("info", "resume", None),
        ("ok", "consume", 3),
    ]
    assert "broker b1 gone" in (h.ops[4].error or "")
    assert broker.acked == [1, 2, 3]  # 3 only after the resume
    assert broker.closed == broker.connections
    assert broker.ops_at_close[0] == 2  # the consuming connection closed (its deliveries requeued) before the pause


def test_a_consumer_started_paused_takes_nothing_and_records_no_resume_at_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / PAUSE_FLAG).touch()
    stop = threading.Event()
    broker = FakeBroker(("b2", [delivery(1)], [lambda: None, stop.set]))
    h = run_consumer(tmp_path, broker, stop, monkeypatch)
    assert [(o.type, o.f) for o in h] == [("info", "pause"), ("info", "queued")]
    assert broker.acked == [] and broker.connections[0].deliveries == [delivery(1)]
    assert broker.closed == broker.connections


def test_the_backlog_and_its_timers_round_trip_through_the_config_file(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    cfg.write(tmp_path / "cfg.json")
    back = WorkloadConfig.read(tmp_path / "cfg.json")
    assert back == cfg and back.backlog == 3
    assert back.pause_flag == tmp_path / PAUSE_FLAG
    # a poll and one op to pause; then each publish an interval and at most a stall's length
    assert cfg.pause_s == pytest.approx(0.2 + 3 * cfg.op_timeout_s)
    assert cfg.backlog_s == pytest.approx(3 * (cfg.interval_s + cfg.stall_s))
    assert WorkloadConfig(out_dir="x", run_id=1).backlog == 50  # the default the playbooks get
