"""TCP connect prober: is anything accepting on the VIP's service port right now?"""

from __future__ import annotations

import socket
import threading
import time

from lab.history import FAIL, INVOKE, OK, JsonlRecorder
from lab.workload.config import Endpoint, WorkloadConfig


def prober(cfg: WorkloadConfig, ep: Endpoint, rec: JsonlRecorder, stop: threading.Event) -> None:
    target = f"{ep.host}:{ep.port}"
    while not stop.is_set():
        started = time.monotonic()
        rec.record(INVOKE, "connect", target, service=ep.service)
        try:
            # Shorter than the period's double, so a black-holed VIP still yields a probe every ~interval.
            with socket.create_connection((ep.host, ep.port), timeout=min(cfg.op_timeout_s, 2 * cfg.interval_s)):
                pass
            rec.record(OK, "connect", target, service=ep.service)
        except OSError as exc:
            rec.record(FAIL, "connect", target, service=ep.service, error=str(exc))
        stop.wait(max(0.0, cfg.interval_s - (time.monotonic() - started)))
