"""memcached client with every server configured (guide ch. 9 `memcached_servers`): set a key, read it back.
A cache loses data by design, so only availability is judged: does the client keep working when a server dies?"""

from __future__ import annotations

import threading

from pymemcache.client.hash import HashClient

from lab.history import FAIL, INFO, INVOKE, OK, JsonlRecorder
from lab.workload.config import WorkloadConfig


def client(cfg: WorkloadConfig) -> HashClient:
    ep = cfg.cache
    assert ep is not None
    # One failed attempt marks a server dead for a while and its keys move to the others (rendezvous hashing),
    # as oslo.cache's memcache pool does with dead_retry.
    return HashClient(
        [(h, ep.port) for h in ep.hosts],
        connect_timeout=cfg.op_timeout_s,
        timeout=cfg.op_timeout_s,
        retry_attempts=1,
        retry_timeout=1,
        dead_timeout=5,  # oslo.cache's dead_retry is 300 s; 5 s lets a restarted server back in quickly
        default_noreply=False,
    )


def failover_bound_s(cfg: WorkloadConfig) -> float:
    """A dead server costs one failed attempt (a connect timeout at worst, a refused connect at best) before the
    client marks it dead, then one op interval until the next op lands on a live server."""
    return cfg.op_timeout_s + cfg.interval_s


def worker(cfg: WorkloadConfig, rec: JsonlRecorder, stop: threading.Event) -> None:
    ep = cfg.cache
    assert ep is not None
    mc = client(cfg)
    next_id = cfg.first_id
    while not stop.is_set():
        next_id += 1
        key, value = f"halab-{next_id}", str(next_id).encode()
        rec.record(INVOKE, "write", next_id, service=ep.service)
        try:
            stored = mc.set(key, value)
            got = mc.get(key)
            if stored and got == value:
                rec.record(OK, "write", next_id, service=ep.service)
            else:
                rec.record(INFO, "write", next_id, service=ep.service, error=f"set={stored} get={got!r}")
        except Exception as exc:
            rec.record(FAIL, "write", next_id, service=ep.service, error=repr(exc))
        stop.wait(cfg.interval_s)
    mc.close()
