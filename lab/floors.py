"""Floors: the least time a failover could have taken on this configuration, as a true lower bound of the
downtime the clients measure (lab/checks/availability.py).

A Pacemaker group moves as a chain: each member's start waits for the previous member's start to complete (and, in
an orderly move, for the old node's stops), so the whole exec-time of every member *before* the service is on the
path. The service member's own start is not: its agent polls (ocf:heartbeat:mysql sleeps 2 s after the server is
already up, rabbitmq-server polls its CLI) and the clients are served before the agent returns. For it the floor
counts only the time from its start request (pacemaker.log on the new node) to the first answer the clients got
(the history). The service's own stop is left out for the same reason: its agent polls for the process to exit.
A crash or freeze adds what corosync's timers make unavoidable before anything moves: token + consensus, less
what the token may have been held before the fault (bounds.membership_floor_ms).

Every part is a duration measured on one clock, or a timer; summed, they are a lower bound because the parts
happen one after another and each is a part of the outage: answered - request <= end - request, and the request
comes after the membership change and the chain."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from lab.bounds import op_exec_ms
from lab.history import OK, WORK_FS, History

# pacemaker.log: "Dec 01 13:12:54.383 node2 pacemaker-controld  [76] (do_lrm_rsc_op) notice: Requesting ..."
_LOG_TIME = re.compile(r"^(\w{3} \d{2} \d{2}:\d{2}:\d{2})\.(\d{3}) ")
REQUEST = "Requesting local execution of start operation for {resource} on {node}"
STOPPED = "Result of stop operation for {resource} on {node}"
# A test allows a failover this many times its floor, plus the history's resolution: slower means something waited
# that the timers and the agents did not make it wait (a failover 5x slower than it should be fails).
LIMIT_FACTOR = 2


@dataclass(frozen=True)
class Floor:
    service: str
    membership_ms: int  # corosync token + consensus - 2 x hold; 0 when the fault keeps the membership
    chain_ms: dict[str, int] = field(default_factory=dict)  # "node:resource:task" -> exec-time, one after another
    answer_ms: int = 0  # the service member's start request until the clients' first answer
    requested_at: float | None = None  # epoch of that start request (pacemaker.log of the new node)
    stop_ms: int = 0  # orderly move: the clients' last answer until the service member's stop completed
    stopped_at: float | None = None  # epoch of that stop's result (pacemaker.log of the old node)
    # every part the fault needs was measured: a floor missing one (the nodes not on the client's clock) is still a
    # lower bound, too low to limit anything
    complete: bool = True
    method: str = ""

    @property
    def total_ms(self) -> int:
        return self.membership_ms + self.stop_ms + sum(self.chain_ms.values()) + self.answer_ms

    def limit_ms(self, resolution_ms: int) -> int | None:
        """What a test allows: LIMIT_FACTOR x the floor + the history's resolution; None for an incomplete floor."""
        return self.total_ms * LIMIT_FACTOR + resolution_ms if self.complete else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_ms": self.total_ms}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Floor:
        return cls(**{k: v for k, v in d.items() if k != "total_ms"})


def chain(crm_mon_ops_xml: str, members: list[str], new: str, old: str | None) -> dict[str, int] | None:
    """exec-times of the ops that must complete in turn before the service member may start: in an orderly move the
    old node's stops of every member but the service (in reverse order), then the new node's starts of every member
    but the service. None when the new node never started one of them (nothing to measure)."""
    ops: list[tuple[str, str, str]] = []
    if old is not None:
        ops += [(old, m, "stop") for m in reversed(members[:-1])]
    ops += [(new, m, "start") for m in members[:-1]]
    out: dict[str, int] = {}
    for node, resource, task in ops:
        ms = op_exec_ms(crm_mon_ops_xml, node, resource, task)
        if ms is None:
            if task == "start":
                return None
            continue  # a stop the old node did not record (it died meanwhile): it adds nothing to the floor
        out[f"{node}:{resource}:{task}"] = ms
    return out


def log_time(line: str, year: int) -> float | None:
    """Epoch seconds of a pacemaker.log line (local time, no year in the line: the fault's year)."""
    m = _LOG_TIME.match(line)
    if not m:
        return None
    t = time.strptime(f"{year} {m[1]}", "%Y %b %d %H:%M:%S")
    return time.mktime(t) + int(m[2]) / 1000


def start_requests(log_lines: Iterable[str], resource: str, node: str, *, since: float) -> list[float]:
    """When Pacemaker asked `node` to start `resource`, at or after `since`, in order."""
    return logged(log_lines, REQUEST.format(resource=resource, node=node), since=since)


def logged(log_lines: Iterable[str], needle: str, *, since: float) -> list[float]:
    """When pacemaker.log lines holding `needle` were written, at or after `since`, in order."""
    year = time.localtime(since).tm_year
    times = [log_time(line, year) for line in log_lines if needle in line]
    return sorted(t for t in times if t is not None and t >= since - 0.001)


def first_answer(history: History, service: str, since: float) -> float | None:
    """The first acknowledged op of `service`'s work completed at or after `since`: the same ops whose failures and
    acks bound its outages, so a floor's first answer is the one that ends the outage it is the floor of."""
    for o in history.ops:
        if o.time >= since and o.type == OK and o.service == service and o.f in WORK_FS:
            return o.time
    return None


def answer_ms(history: History, service: str, requests: list[float]) -> tuple[float, int] | None:
    """(request, ms from it to the first answer): the last start request before the first answer after the first
    request (a start that failed and was retried counts from the retry)."""
    if not requests:
        return None
    answered = first_answer(history, service, requests[0])
    if answered is None:
        return None
    request = max(r for r in requests if r <= answered)
    return request, round((answered - request) * 1000)


def last_answer(history: History, service: str, before: float) -> float | None:
    """The last acknowledged op of `service` completed before `before`."""
    done = [o.time for o in history.ops if o.time < before and o.type == OK and o.service == service and o.f in WORK_FS]
    return max(done, default=None)


def stop_ms(history: History, service: str, results: list[float]) -> tuple[float, int] | None:
    """(result, ms from the clients' last answer before it): the service member's stop in an orderly move. Its
    whole exec-time is on the path (the next member's stop waits for it) but it began while the service still
    answered; from the last answer on, the clients were without it."""
    if not results:
        return None
    last = last_answer(history, service, results[0])
    return None if last is None else (results[0], round((results[0] - last) * 1000))
