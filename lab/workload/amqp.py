"""AMQP publisher with publisher confirms, and a consumer, through the RabbitMQ VIP (or over every broker).

The consumer pauses while the trial's flag file (`WorkloadConfig.pause_flag`) exists: the trial creates it a little
before its first fault, so confirmed messages sit in the queue through the fault and recovery, and the drain after
the run (`drain`, the runner's --verify) must find every one of them."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import pika
import pika.exceptions

from lab.history import FAIL, INFO, INVOKE, OK, JsonlRecorder
from lab.workload.config import CONSUME_POLL_S, Endpoint, WorkloadConfig


class Channel(Protocol):
    """What the workload uses of pika's BlockingChannel (pika ships no type hints). A delivery is (method,
    properties, body), all three None when nothing came (consume's inactivity timeout, basic_get on empty)."""

    def queue_declare(self, queue: str, *, durable: bool = ..., arguments: dict[str, Any] | None = ...) -> Any: ...
    def confirm_delivery(self) -> None: ...
    def basic_publish(
        self, exchange: str, routing_key: str, body: bytes, properties: Any = ..., mandatory: bool = ...
    ) -> None: ...
    def consume(self, queue: str, *, inactivity_timeout: float | None = ...) -> Iterator[tuple[Any, Any, Any]]: ...
    def basic_ack(self, delivery_tag: int = ...) -> None: ...
    def basic_get(self, queue: str, *, auto_ack: bool = ...) -> tuple[Any, Any, Any]: ...


class Connection(Protocol):
    """What the workload uses of pika's BlockingConnection."""

    @property
    def is_open(self) -> bool: ...
    def channel(self) -> Channel: ...
    def process_data_events(self, time_limit: float | None = ...) -> None: ...
    def close(self) -> None: ...


def connect(ep: Endpoint, timeout: float) -> tuple[Connection, str]:
    """The first of the endpoint's brokers that takes a connection (guide ch. 7's rabbit_hosts: tried in turn), and
    its address (which broker a client is on is part of what a broker loss shows)."""
    error: Exception | None = None
    for host in ep.hosts or [ep.host]:
        params = pika.ConnectionParameters(
            host=host,
            port=ep.port,
            credentials=pika.PlainCredentials(ep.user, ep.password),
            connection_attempts=1,
            socket_timeout=timeout,
            stack_timeout=timeout * 2,
            blocked_connection_timeout=timeout * 2,
            heartbeat=2,
        )
        try:
            return pika.BlockingConnection(params), host
        except pika.exceptions.AMQPConnectionError as exc:
            error = exc
    assert error is not None  # an Endpoint has at least `host`
    raise error


def declare(ch: Channel, queue: str, queue_type: str = "classic") -> int:
    """Declare the workload's durable queue; return how many messages the broker says it holds ready."""
    args = {"x-queue-type": queue_type} if queue_type != "classic" else None
    return int(ch.queue_declare(queue=queue, durable=True, arguments=args).method.message_count)


def channel(ep: Endpoint, queue: str, timeout: float, queue_type: str = "classic") -> tuple[Connection, Channel]:
    conn, _host = connect(ep, timeout)
    ch = conn.channel()
    declare(ch, queue, queue_type)
    return conn, ch


def _close(conn: Connection | None) -> None:
    try:
        if conn is not None and conn.is_open:
            conn.close()
    except Exception:
        pass


def publisher(cfg: WorkloadConfig, rec: JsonlRecorder, stop: threading.Event) -> None:
    ep = cfg.amqp
    assert ep is not None
    conn = ch = None
    next_id = cfg.first_id
    while not stop.is_set():
        next_id += 1
        rec.record(INVOKE, "publish", next_id, service=ep.service)
        if ch is None:
            try:
                conn, ch = channel(ep, cfg.queue, cfg.op_timeout_s, cfg.queue_type)
                ch.confirm_delivery()
            except Exception as exc:
                rec.record(FAIL, "publish", next_id, service=ep.service, error=f"connect: {exc!r}")
                _close(conn)
                conn = ch = None
                stop.wait(cfg.interval_s)
                continue
        try:
            # With confirms on, basic_publish returns only once the broker has confirmed the message.
            ch.basic_publish(
                "", cfg.queue, str(next_id).encode(), pika.BasicProperties(delivery_mode=2), mandatory=True
            )
            rec.record(OK, "publish", next_id, service=ep.service)
        except Exception as exc:
            rec.record(INFO, "publish", next_id, service=ep.service, error=repr(exc))
            _close(conn)
            conn = ch = None
        stop.wait(cfg.interval_s)
    _close(conn)


def consumer(cfg: WorkloadConfig, rec: JsonlRecorder, stop: threading.Event) -> None:
    ep = cfg.amqp
    assert ep is not None
    while not stop.is_set():
        if cfg.pause_flag.exists():
            paused(cfg, rec, stop)
            continue
        conn = None
        try:
            conn, ch = channel(ep, cfg.queue, cfg.op_timeout_s, cfg.queue_type)
            for method, _props, body in ch.consume(cfg.queue, inactivity_timeout=CONSUME_POLL_S):
                # a delivery that came after the flag is not taken: closing the connection requeues it
                if stop.is_set() or cfg.pause_flag.exists():
                    break
                if method is None:
                    continue
                rec.record(OK, "consume", int(body), service=ep.service)
                ch.basic_ack(method.delivery_tag)
        except Exception as exc:
            rec.record(FAIL, "consume", None, service=ep.service, error=repr(exc))
            stop.wait(cfg.interval_s)
        finally:
            _close(conn)  # before `paused` records the pause: every unacknowledged delivery is back in the queue


def paused(cfg: WorkloadConfig, rec: JsonlRecorder, stop: threading.Event) -> None:
    """While the trial's flag exists: take nothing from the queue, but stay connected as a consumer would (to
    another broker when one goes) and record per connection which broker and how many messages it says are queued.
    The `pause` and `resume` ops tell the trial and the checkers when the consumer stopped and started taking."""
    ep = cfg.amqp
    assert ep is not None
    rec.record(INFO, "pause", service=ep.service)
    conn: Connection | None = None
    while not stop.is_set() and cfg.pause_flag.exists():
        try:
            if conn is None:
                conn, host = connect(ep, cfg.op_timeout_s)
                queued = declare(conn.channel(), cfg.queue, cfg.queue_type)
                rec.record(INFO, "queued", {"broker": host, "messages": queued}, service=ep.service)
            conn.process_data_events(time_limit=CONSUME_POLL_S)  # heartbeats; raises once the broker is gone
        except Exception as exc:
            rec.record(FAIL, "queued", service=ep.service, error=repr(exc))
            _close(conn)
            conn = None
            stop.wait(cfg.interval_s)
    _close(conn)
    if not stop.is_set():
        rec.record(INFO, "resume", service=ep.service)


def drain(cfg: WorkloadConfig, queue: str | None = None, parse: Callable[[bytes], int] = int) -> set[int]:
    """Everything still queued after the run: with the consumer paused since a little before the first fault, every
    message confirmed since then (the backlog at the fault among them) must be here. `queue` names another queue
    (the API stand-in's, whose bodies `parse` reads)."""
    ep = cfg.amqp
    assert ep is not None
    name = queue or cfg.queue
    conn, ch = channel(ep, name, 5.0, cfg.queue_type)
    got: set[int] = set()
    try:
        while True:
            method, _props, body = ch.basic_get(name, auto_ack=True)
            if method is None:
                return got
            got.add(parse(body))
    finally:
        _close(conn)


def api_message_id(body: bytes) -> int:
    """The row id of one of the API stand-in's messages: {"id": N, "port": ..., "node": ...}."""
    return int(json.loads(body)["id"])
