"""`python -m lab.workload.runner CONFIG` on the client node: run every client until SIGTERM (the AMQP consumer
takes nothing while the trial's `consumer-paused` flag exists in out_dir: lab/workload/amqp.py).
`python -m lab.workload.runner --verify CONFIG` reads back what survived and prints it as JSON: every row, and
every message still queued (with the consumer paused since before the first fault, every one confirmed since)."""

from __future__ import annotations

import json
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Protocol

from lab.history import JsonlRecorder
from lab.workload import amqp, cache, http, identity, image, sql, vip
from lab.workload.config import WorkloadConfig


class Job(Protocol):
    """One client's loop, given its recorder (a Protocol, not a Callable: `lambda r, ep=ep: ...` matches it)."""

    def __call__(self, rec: JsonlRecorder, /) -> None: ...


def run(cfg: WorkloadConfig) -> int:
    """Every client until SIGTERM: 0, or 1 when a client died of an exception (its traceback on stderr)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    out = Path(cfg.out_dir)
    jobs: list[tuple[str, Job]] = []
    if cfg.sql:
        jobs.append((f"{cfg.sql.service}-writer", lambda r: sql.writer(cfg, r, stop)))
    if cfg.amqp:
        jobs.append((f"{cfg.amqp.service}-publisher", lambda r: amqp.publisher(cfg, r, stop)))
        jobs.append((f"{cfg.amqp.service}-consumer", lambda r: amqp.consumer(cfg, r, stop)))
    if cfg.http:
        jobs.append((f"{cfg.http.service}-writer", lambda r: http.writer(cfg, r, stop)))
    if cfg.cache:
        jobs.append((f"{cfg.cache.service}-client", lambda r: cache.worker(cfg, r, stop)))
    if cfg.identity:
        first = identity.FirstToken()
        jobs.append((f"{cfg.identity.service}-issuer", lambda r: identity.issuer(cfg, r, stop, first)))
        jobs.append((f"{cfg.identity.service}-validator", lambda r: identity.validator(cfg, r, stop, first)))
    if cfg.image and cfg.identity:
        jobs.append((f"{cfg.image.service}-client", lambda r: image.client(cfg, r, stop)))
    for ep in cfg.probes:
        jobs.append((f"probe-{ep.service}", lambda r, ep=ep: vip.prober(cfg, ep, r, stop)))
    threads: list[threading.Thread] = []
    died: list[str] = []
    for name, fn in jobs:
        rec = JsonlRecorder(out / f"{name}.jsonl", name)
        t = threading.Thread(target=guarded, args=(name, fn, rec, stop, died), name=name, daemon=True)
        t.start()
        threads.append(t)
    (out / "started").write_text("ok\n")  # the harness waits for this, not for a guessed delay
    stop.wait()
    for t in threads:
        t.join(timeout=10)
    return 1 if died else 0


def guarded(name: str, fn: Job, rec: JsonlRecorder, stop: threading.Event, died: list[str]) -> None:
    """Run one client; if it dies of an exception, stop them all: the runner then exits 1 with the traceback in
    its log, and the trial says so at once (Trial.runner_alive) instead of waiting out its deadline for ops a dead
    client will never record."""
    try:
        fn(rec)
    except BaseException:
        died.append(name)
        print(f"workload client {name} died:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
        stop.set()


def verify(cfg: WorkloadConfig) -> dict:
    """{"present": {service: [ids of rows found]}, "drained": [message ids still queued], "api_drained": [ids of
    the API's messages still queued]}."""
    present: dict[str, list[int]] = {}
    result: dict = {"present": present}
    if cfg.sql:
        present[cfg.sql.service] = sorted(sql.present_ids(cfg))
        if cfg.http:
            present[cfg.http.service] = sorted(sql.present_ids(cfg, cfg.api_table))
    if cfg.amqp:
        result["drained"] = sorted(amqp.drain(cfg))
        if cfg.http and cfg.api_queue:
            result["api_drained"] = sorted(amqp.drain(cfg, cfg.api_queue, amqp.api_message_id))
    return result


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--verify":
        print(json.dumps(verify(WorkloadConfig.read(Path(argv[1])))))
        return 0
    return run(WorkloadConfig.read(Path(argv[0])))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
