"""Samples every node's addresses and shared-disk mounts, and every cluster node's quorum, into the history while a
trial runs.

Clients only see what answers; a double VIP or a double mount is visible only from here, and a second quorate
partition only from the nodes' own corosync.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from pathlib import Path
from typing import Any

from lab.checks.quorum_parse import QuorumParseError, parse_quorumtool
from lab.history import INFO, History, JsonlRecorder
from lab.providers.base import Provider

# A sample looks at every node (netns: `ip -n` and /proc; libvirt: one SSH round trip each); on a loaded 2-core
# machine one can take several periods. More than this many periods without a sample means the observer was blind
# for a stretch. The period is the provider's (`observe_period_s`).
MAX_GAP_PERIODS = 30
QUORUM_CMD = "corosync-quorumtool -s"
# A quorum look starts a process in the node that talks to corosync over IPC (netns: nsenter + fork/exec; libvirt:
# an SSH session): measured on netns, 34 ms median against 6 ms for an address look (6x): one quorum sample every
# this many VIP periods (netns 0.5 s, libvirt 2.5 s).
QUORUM_PERIODS = 5
# A call that has not answered within this many quorum periods is killed, and the node asked afresh in the next
# sample; until then the node has no answer in each sample (no second call piles up behind it) and the others'
# answers are not held up by it. A call caught by a freeze stays hung after the thaw (measured: until killed), so
# this bounds how long a thawed node stays unseen. Measured on netns under load 10 on 2 cores: 34 ms median,
# 113 ms worst of 30 calls.
QUORUM_CALL_PERIODS = 4


class Observer:
    def __init__(
        self,
        provider: Provider,
        vips: list[str],
        devices: list[str],
        out: Path,
        period_s: float = 0.1,
        *,
        quorum_nodes: Sequence[str] | None = None,
        quorum_period_s: float | None = None,
    ) -> None:
        self.provider = provider
        self.vips = vips
        self.devices = set(devices)
        self.period_s = period_s
        self.rec = JsonlRecorder(out / "observer.jsonl", "observer")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="observer", daemon=True)
        self.samples = 0
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="observer")
        # quorum: its own thread, pool and file (one writer per file), so a slow corosync never delays a VIP sample
        self._out = out
        self._quorum_nodes_given = None if quorum_nodes is None else list(quorum_nodes)
        self.quorum_nodes: list[str] = []  # resolved at start: the scenario's cluster nodes unless given
        self.quorum_period_s = quorum_period_s if quorum_period_s is not None else period_s * QUORUM_PERIODS
        self.quorum_samples = 0
        self._qrec: JsonlRecorder | None = None
        self._qthread = threading.Thread(target=self._quorum_loop, name="observer-quorum", daemon=True)
        self._qpool: ThreadPoolExecutor | None = None
        self._inflight: dict[str, Future[tuple[float, dict[str, Any]]]] = {}

    def _look(self, node: str) -> tuple[list[str], list[tuple[str, str]]]:
        if not self.provider.is_running(node):
            return [], []  # powered off: its dark namespace still lists addresses, but nothing answers there
        return self.provider.observe(node)

    def sample(self) -> None:
        holders: dict[str, list[str]] = {v: [] for v in self.vips}
        mounts: dict[str, list[list[str]]] = {}
        nodes = list(self.provider.scenario.nodes)
        # All nodes at once: over SSH one look costs a round trip, and the sample is only as sharp as its slowest.
        for node, (addresses, node_mounts) in zip(nodes, self._pool.map(self._look, nodes), strict=True):
            addrs = set(addresses)
            for v in self.vips:
                if v in addrs:
                    holders[v].append(node)
            mine = [[src, dst] for src, dst in node_mounts if src in self.devices]
            if mine:
                mounts[node] = mine
        self.rec.record(INFO, "vip-holders", holders)
        self.rec.record(INFO, "mounts", mounts)
        self.samples += 1

    @property
    def quorum_call_timeout_s(self) -> float:
        """How long one quorum call may take: an answer can be this much older than the sample that carries it."""
        return self.quorum_period_s * QUORUM_CALL_PERIODS

    def _ask_quorum(self, node: str) -> tuple[float, dict[str, Any]]:
        """(when it answered, the parsed answer or {"error": why})."""
        try:
            r = self.provider.run(node, QUORUM_CMD, timeout=self.quorum_call_timeout_s)
        except Exception as exc:  # libvirt: the guest went away mid-call; the node's answer is the error
            return time.time(), {"error": repr(exc)[:300]}
        try:
            return time.time(), parse_quorumtool(r.stdout)
        except QuorumParseError as exc:  # corosync down ("Cannot initialize CMAP service"), or timed out (rc 124)
            said = (r.stderr.strip() or r.stdout.strip()).splitlines()
            return time.time(), {"error": f"rc {r.rc}: {said[-1][:200] if said else exc}"}

    def sample_quorum(self) -> None:
        """One `quorum` op: {node: parsed `corosync-quorumtool -s`, or {"error": why}} for every cluster node, asked
        all at once and waited for at most one quorum period. A node still busy with an earlier call is waited for
        again, not asked twice; one that does not answer in time misses this sample only. The sample is dated by
        its newest answer, not by the wait for a node that gave none."""
        assert self._qpool is not None and self._qrec is not None
        value: dict[str, dict[str, Any]] = {}
        for node in self.quorum_nodes:
            if node in self._inflight:
                continue
            if not self.provider.is_running(node):
                value[node] = {"error": "not running"}
                continue
            self._inflight[node] = self._qpool.submit(self._ask_quorum, node)
        asked = dict(self._inflight)
        wait_futures(asked.values(), timeout=self.quorum_period_s)
        answered: list[float] = []
        for node, fut in asked.items():
            if fut.done():
                answered_at, value[node] = fut.result()
                answered.append(answered_at)
                del self._inflight[node]
            else:
                value[node] = {"error": f"no answer within {self.quorum_period_s * 1000:.0f} ms"}
        dated = max(answered) if answered else None
        self._qrec.record(INFO, "quorum", {n: value[n] for n in self.quorum_nodes}, time=dated)
        self.quorum_samples += 1

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception as exc:  # a node dying mid-read must not end the observation; say it in the history
                self.rec.record(INFO, "observer-error", None, error=repr(exc))
            self._stop.wait(self.period_s)

    def _quorum_loop(self) -> None:
        assert self._qrec is not None
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                self.sample_quorum()
            except Exception as exc:  # a bug, not a node's trouble (that is in the sample): said, and go on
                self._qrec.record(INFO, "observer-error", None, error=repr(exc))
            self._stop.wait(max(0.0, self.quorum_period_s - (time.monotonic() - began)))  # a steady rate

    def coverage(self, history: History, since: float) -> tuple[bool, str]:
        """Did the observer watch the whole trial? A checker that saw no sample cannot have seen a double VIP: fail
        on observer errors, or on a gap between samples longer than MAX_GAP_PERIODS periods after `since`."""
        errors = history.select(f="observer-error", since=since)
        times = [o.time for o in history.select(f="vip-holders", process="observer")]
        after = [t for t in times if t >= since]
        gaps = [b - a for a, b in zip(times, times[1:], strict=False) if b >= since]
        worst = max(gaps, default=0.0)
        ok = not errors and len(after) >= 2 and worst <= MAX_GAP_PERIODS * self.period_s
        detail = (
            f"{len(after)} samples after the fault, longest gap {worst * 1000:.0f} ms "
            f"(limit {MAX_GAP_PERIODS * self.period_s * 1000:.0f} ms), {len(errors)} errors"
            + (f": {errors[0].error}" if errors else "")
        )
        return ok, detail

    def start(self) -> None:
        self.sample()  # one sample before the fault, so "who held it before" is always known
        self._thread.start()
        given = self._quorum_nodes_given
        self.quorum_nodes = (
            given if given is not None else [n.name for n in self.provider.scenario.nodes_with_role("pacemaker")]
        )
        if self.quorum_nodes:  # no corosync on this topology (active/active): no quorum samples
            self._qrec = JsonlRecorder(self._out / "observer-quorum.jsonl", "observer")
            self._qpool = ThreadPoolExecutor(max_workers=len(self.quorum_nodes), thread_name_prefix="observer-quorum")
            self._qthread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.sample()
        self._pool.shutdown(wait=True)
        self.rec.close()
        if self._qrec is not None and self._qpool is not None:
            self._qthread.join(timeout=10 + self.quorum_period_s)
            self.sample_quorum()  # as after the VIPs: what quorum the trial ended with
            self._qpool.shutdown(wait=False, cancel_futures=True)  # a hung call ends by its own timeout
            self._qrec.close()
            self._qrec = None
