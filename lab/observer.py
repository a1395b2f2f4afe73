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
# A sample waits this many periods for each node's look, then goes on without the nodes that have not answered
# (libvirt: a guest's state calls block while libvirtd destroys it for fencing; measured under TCG, a whole sample
# stalled for 15 s when it waited for every node).
LOOK_WAIT_PERIODS = 10
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
        self._looks: dict[str, Future[tuple[bool, list[str], list[tuple[str, str]]]]] = {}
        self._unanswered: dict[str, tuple[float, str]] = {}  # node -> (first sample it missed, why)
        self._last: dict[str, tuple[list[str], list[tuple[str, str]]]] = {}  # node -> its last answered look

    def _look(self, node: str) -> tuple[bool, list[str], list[tuple[str, str]]]:
        """(running, addresses, mounts)."""
        if not self.provider.is_running(node):
            return False, [], []  # powered off: its dark namespace still lists addresses, but nothing answers there
        return True, *self.provider.observe(node)

    @property
    def look_wait_s(self) -> float:
        """How long a sample waits for a node's look before it goes on without it."""
        return self.period_s * LOOK_WAIT_PERIODS

    def sample(self) -> None:
        """Every node looked at all at once (over SSH a look costs a round trip), each on its own: a node that does
        not answer within look_wait_s (a guest being fenced, a busy one) or whose look fails misses this sample
        only, and is not asked twice: the sample carries what it was last seen with and names it `unanswered`. A
        stretch a node went unanswered is recorded when it ends (`look-gap`), with how it ended: coverage judges
        it."""
        holders: dict[str, list[str]] = {v: [] for v in self.vips}
        mounts: dict[str, list[list[str]]] = {}
        for node in self.provider.scenario.nodes:
            if node not in self._looks:
                self._looks[node] = self._pool.submit(self._look, node)
        asked = dict(self._looks)
        wait_futures(asked.values(), timeout=self.look_wait_s)
        now = time.time()
        unanswered: dict[str, str] = {}
        for node in self.provider.scenario.nodes:  # in the scenario's order, whichever look is still in flight
            fut = asked[node]
            if not fut.done():
                unanswered[node] = f"no answer within {self.look_wait_s * 1000:.0f} ms"
            else:
                del self._looks[node]
                try:
                    running, addresses, node_mounts = fut.result()
                    self._last[node] = (addresses, node_mounts)
                    self._answered(node, now, "answered" if running else "powered off")
                except Exception as exc:  # this node's look failed (a guest going away mid-read): its own loss
                    unanswered[node] = repr(exc)[:300]
            if node in unanswered:  # what it was last seen with, so a timeline does not read its silence as a
                # move; the checkers of double holders leave it out of this sample (split_brain: `unanswered`)
                addresses, node_mounts = self._last.get(node, ([], []))
            addrs = set(addresses)
            for v in self.vips:
                if v in addrs:
                    holders[v].append(node)
            mine = [[src, dst] for src, dst in node_mounts if src in self.devices]
            if mine:
                mounts[node] = mine
        for node, why in unanswered.items():
            self._unanswered.setdefault(node, (now, why))
        self.rec.record(INFO, "vip-holders", holders, time=now)
        self.rec.record(INFO, "mounts", mounts, time=now)
        if unanswered:
            self.rec.record(INFO, "unanswered", unanswered, time=now)
        self.samples += 1

    def _answered(self, node: str, at: float, ended: str) -> None:
        began = self._unanswered.pop(node, None)
        if began is not None:
            since, why = began
            self.rec.record(
                INFO, "look-gap", {"node": node, "ms": round((at - since) * 1000), "ended": ended, "why": why}, time=at
            )

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
        on observer errors, on a gap between samples longer than MAX_GAP_PERIODS periods after `since`, or on a node
        left unanswered that long and then found running (or never found again): its holdings were not seen. A
        node that was unanswered until it was found powered off (fenced, crashed) held nothing the checkers missed
        once off; its stretch is said, not failed."""
        limit_s = MAX_GAP_PERIODS * self.period_s
        errors = history.select(f="observer-error", since=since)
        times = [o.time for o in history.select(f="vip-holders", process="observer")]
        after = [t for t in times if t >= since]
        gaps = [b - a for a, b in zip(times, times[1:], strict=False) if b >= since]
        worst = max(gaps, default=0.0)
        stretches = [o.value for o in history.select(f="look-gap", process="observer", since=since)]
        blind = [g for g in stretches if g["ended"] != "powered off" and g["ms"] > limit_s * 1000]
        ok = not errors and not blind and len(after) >= 2 and worst <= limit_s
        detail = (
            f"{len(after)} samples after the fault, longest gap {worst * 1000:.0f} ms "
            f"(limit {limit_s * 1000:.0f} ms), {len(errors)} errors" + (f": {errors[0].error}" if errors else "")
        )
        longest: dict[str, dict[str, Any]] = {}
        for g in stretches:
            if g["ms"] > longest.get(g["node"], {"ms": -1})["ms"]:
                longest[g["node"]] = g
        if longest:
            detail += "; unanswered longest: " + ", ".join(
                f"{n} {g['ms']} ms ({g['ended']}{': ' + g['why'] if g in blind else ''})" for n, g in longest.items()
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
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=10 + self.look_wait_s)
        self.sample()
        now = time.time()
        for node in list(self._unanswered):  # still unanswered at the end: a stretch that never ended
            self._answered(node, now, "never answered")
        self._pool.shutdown(wait=False, cancel_futures=True)  # a hung look ends by its own timeout
        self.rec.close()
        if self._qrec is not None and self._qpool is not None:
            self._qthread.join(timeout=10 + self.quorum_period_s)
            self.sample_quorum()  # as after the VIPs: what quorum the trial ended with
            self._qpool.shutdown(wait=False, cancel_futures=True)  # a hung call ends by its own timeout
            self._qrec.close()
            self._qrec = None
