"""AMQP publisher with publisher confirms, and a consumer, through the RabbitMQ VIP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, Protocol

import pika

from lab.history import FAIL, INFO, INVOKE, OK, JsonlRecorder
from lab.workload.config import Endpoint, WorkloadConfig


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


def channel(
    ep: Endpoint, queue: str, timeout: float, queue_type: str = "classic"
) -> tuple[pika.BlockingConnection, Channel]:
    # Several brokers (guide ch. 7's rabbit_hosts): pika tries them in turn.
    params = [
        pika.ConnectionParameters(
            host=host,
            port=ep.port,
            credentials=pika.PlainCredentials(ep.user, ep.password),
            connection_attempts=1,
            socket_timeout=timeout,
            stack_timeout=timeout * 2,
            blocked_connection_timeout=timeout * 2,
            heartbeat=2,
        )
        for host in (ep.hosts or [ep.host])
    ]
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    args = {"x-queue-type": queue_type} if queue_type != "classic" else None
    ch.queue_declare(queue=queue, durable=True, arguments=args)
    return conn, ch


def _close(conn: pika.BlockingConnection | None) -> None:
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
        conn = None
        try:
            conn, ch = channel(ep, cfg.queue, cfg.op_timeout_s, cfg.queue_type)
            for method, _props, body in ch.consume(cfg.queue, inactivity_timeout=0.2):
                if stop.is_set():
                    break
                if method is None:
                    continue
                rec.record(OK, "consume", int(body), service=ep.service)
                ch.basic_ack(method.delivery_tag)
        except Exception as exc:
            rec.record(FAIL, "consume", None, service=ep.service, error=repr(exc))
            stop.wait(cfg.interval_s)
        finally:
            _close(conn)


def drain(cfg: WorkloadConfig) -> set[int]:
    """Everything still queued after recovery."""
    ep = cfg.amqp
    assert ep is not None
    conn, ch = channel(ep, cfg.queue, 5.0, cfg.queue_type)
    got: set[int] = set()
    try:
        while True:
            method, _props, body = ch.basic_get(cfg.queue, auto_ack=True)
            if method is None:
                return got
            got.add(int(body))
    finally:
        _close(conn)
