"""API writer through the VIP: each request asks an API stand-in to write a row through the
database VIP and publish to RabbitMQ; 200 means both happened."""

from __future__ import annotations

import http.client
import threading

from lab.history import FAIL, INFO, INVOKE, OK, JsonlRecorder
from lab.workload.config import WorkloadConfig


def writer(cfg: WorkloadConfig, rec: JsonlRecorder, stop: threading.Event) -> None:
    ep = cfg.http
    assert ep is not None
    next_id = cfg.first_id
    while not stop.is_set():
        next_id += 1
        rec.record(INVOKE, "write", next_id, service=ep.service)
        conn = http.client.HTTPConnection(ep.host, ep.port, timeout=cfg.op_timeout_s)  # the connect's (max_op_s)
        try:
            conn.connect()
        except OSError as exc:  # nothing sent
            rec.record(FAIL, "write", next_id, service=ep.service, error=f"connect: {exc}")
            stop.wait(cfg.interval_s)
            continue
        assert conn.sock is not None
        conn.sock.settimeout(cfg.op_timeout_s * 2)  # then the answer's
        try:
            conn.request("POST", f"/write?id={next_id}")
            resp = conn.getresponse()
            body = resp.read(200).decode(errors="replace")
            if resp.status == 200:
                rec.record(OK, "write", next_id, service=ep.service)
            else:  # the stand-in may have written the row before a later step failed: indeterminate
                rec.record(INFO, "write", next_id, service=ep.service, error=f"{resp.status} {body}")
        except (OSError, http.client.HTTPException) as exc:
            rec.record(INFO, "write", next_id, service=ep.service, error=repr(exc))
        finally:
            conn.close()
        stop.wait(cfg.interval_s)
