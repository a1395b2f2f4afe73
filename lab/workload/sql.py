"""SQL writer through a VIP: one row per op, acknowledged when the autocommit INSERT returns."""

from __future__ import annotations

import contextlib
import threading
import time

import pymysql

from lab.history import FAIL, INFO, INVOKE, OK, JsonlRecorder
from lab.workload.config import Endpoint, WorkloadConfig


def connect(ep: Endpoint, timeout: float) -> pymysql.connections.Connection:
    return pymysql.connect(
        host=ep.host,
        port=ep.port,
        user=ep.user,
        password=ep.password,
        database="halab",
        connect_timeout=timeout,
        read_timeout=timeout * 2,
        write_timeout=timeout * 2,
        autocommit=True,
    )


def writer(cfg: WorkloadConfig, rec: JsonlRecorder, stop: threading.Event) -> None:
    ep = cfg.sql
    assert ep is not None
    conn = None
    next_id = cfg.first_id
    while not stop.is_set():
        next_id += 1
        rec.record(INVOKE, "write", next_id, service=ep.service)
        if conn is None:
            try:
                conn = connect(ep, cfg.op_timeout_s)
            except Exception as exc:  # not sent at all: a definite failure
                rec.record(FAIL, "write", next_id, service=ep.service, error=f"connect: {exc}")
                stop.wait(cfg.interval_s)
                continue
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "INSERT INTO writes (id, client, at) VALUES (%s, %s, %s)", (next_id, rec.process, time.time())
                )
            rec.record(OK, "write", next_id, service=ep.service)
        except Exception as exc:  # sent, outcome unknown: indeterminate, as Jepsen's :info
            rec.record(INFO, "write", next_id, service=ep.service, error=str(exc))
            with contextlib.suppress(Exception):
                conn.close()
            conn = None
        stop.wait(cfg.interval_s)
    if conn is not None:
        conn.close()


def present_ids(cfg: WorkloadConfig, table: str = "writes") -> set[int]:
    ep = cfg.sql
    assert ep is not None
    conn = connect(ep, 5.0)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT id FROM {table} WHERE id > %s AND id < %s", (cfg.first_id, cfg.first_id + 1_000_000))
            return {int(r[0]) for r in cur.fetchall()}
    finally:
        conn.close()
