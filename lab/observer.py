"""Samples every node's addresses and shared-disk mounts into the history while a trial runs.

Clients only see what answers; a double VIP or a double mount is visible only from here.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lab.history import INFO, History, JsonlRecorder
from lab.providers.base import Provider

# A sample looks at every node (netns: `ip -n` and /proc; libvirt: one SSH round trip each); on a loaded 2-core
# machine one can take several periods. More than this many periods without a sample means the observer was blind
# for a stretch. The period is the provider's (`observe_period_s`).
MAX_GAP_PERIODS = 30


class Observer:
    def __init__(
        self, provider: Provider, vips: list[str], devices: list[str], out: Path, period_s: float = 0.1
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

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception as exc:  # a node dying mid-read must not end the observation; say it in the history
                self.rec.record(INFO, "observer-error", None, error=repr(exc))
            self._stop.wait(self.period_s)

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

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.sample()
        self._pool.shutdown(wait=True)
        self.rec.close()
