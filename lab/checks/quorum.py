"""Quorum as the observer saw it, and what depends on it (pure functions of a History).

The observer records `quorum` samples, one answer per cluster node from `corosync-quorumtool -s`
(lab/checks/quorum_parse.py): {node: {"quorate": bool, "members": [names], "expected": int, ...}}. A node that did
not answer (not running, corosync down, frozen) has an entry without a bool "quorate" and is judged by nobody.

- quorum_partitions (lab/checks/quorum_partitions.py): at most one current quorate partition at any moment;
- resources_in_quorum: VIPs only on quorate nodes, unless no-quorum-policy=ignore says otherwise;
- wait_for_all: no node quorate before every node has been a member at once.

"No samples" is a failure everywhere: a checker that saw nothing cannot have seen a second partition.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from lab.checks.base import Check
from lab.checks.split_brain import vip_samples
from lab.history import INFO, History

View = dict[str, Mapping[str, Any]]  # node -> its answer, answering nodes only
Sample = tuple[float, View]


def quorum_samples(history: History, since: float | None = None) -> list[Sample]:
    """(time, answering nodes' answers) per `quorum` sample, in time order; a sample nobody answered is kept
    (empty): it says the observer looked."""
    out: list[Sample] = []
    for o in history.select(f="quorum", type=INFO, since=since):
        if isinstance(o.value, Mapping):
            answered = {
                str(n): e for n, e in o.value.items() if isinstance(e, Mapping) and isinstance(e.get("quorate"), bool)
            }
            out.append((o.time, answered))
    return sorted(out, key=lambda s: s[0])


def member_set(entry: Mapping[str, Any]) -> set[str]:
    return {str(m) for m in entry.get("members") or ()}


def node_list(nodes: Collection[str]) -> str:
    return "[" + ", ".join(sorted(nodes)) + "]"


def sample_span(samples: list[Sample]) -> str:
    nodes = {n for _, v in samples for n in v}
    return f"{len(samples)} samples over {samples[-1][0] - samples[0][0]:.1f} s from {len(nodes)} answering nodes"


def _inquorate_since(samples: list[Sample]) -> list[dict[str, float]]:
    """Per quorum sample: node -> when its current stretch without quorum began (its first inquorate answer after
    its last quorate one), for nodes inquorate in that sample. A sample a node missed neither ends nor starts one."""
    since: dict[str, float] = {}
    out: list[dict[str, float]] = []
    for t, view in samples:
        for n, e in view.items():
            if e["quorate"]:
                since.pop(n, None)
            else:
                since.setdefault(n, t)
        out.append({n: s for n, s in since.items() if n in view and not view[n]["quorate"]})
    return out


def resources_in_quorum(
    history: History, *, no_quorum_policy: str, grace_s: float, fail_when_ignored: bool = False
) -> Check:
    """VIP holders (the observer's `vip-holders` samples) only on quorate nodes.

    Each VIP sample is judged by the latest quorum sample at or before it. A VIP a node gains while inquorate is
    wrong at once; one it held when it lost quorum may stay for `grace_s` (the caller's: how long the group's stops
    may take, in reverse order, the VIP last), and for ever under no-quorum-policy=freeze (Pacemaker keeps what
    runs, starts nothing). Under no-quorum-policy=ignore resources run without quorum as configured: what was found
    is reported (from each node's quorum loss on, no grace) and passes, unless `fail_when_ignored`."""
    name = "quorum-resources"
    qs, vs = quorum_samples(history), vip_samples(history)
    # "gained" compares with what each node was last seen holding: a sample in which the observer heard from no one
    # (the host loaded: every look past its timeout) shows no holder, and the next one seen with the VIP gained
    # nothing (seen: a frozen minority's VIP "gained" 0 ms after such a sample)
    seen = [holders for _, holders in vip_samples(history, heard_only=False)]
    if not qs or not vs:
        missing = " and ".join(w for w, s in (("quorum", qs), ("vip-holders", vs)) if not s)
        return Check(name, False, f"no {missing} samples recorded: nothing to judge")
    times = [t for t, _ in qs]
    lost = _inquorate_since(qs)
    open_: dict[tuple[str, str], _Held] = {}
    found: list[_Held] = []
    unjudged = 0
    prev: tuple[float, dict[str, set[str]]] | None = None
    for (t, holders), last_seen in zip(vs, seen, strict=True):
        i = bisect.bisect_right(times, t) - 1
        for key in list(open_):
            if key[1] not in holders.get(key[0], ()):
                found.append(open_.pop(key))
        for vip, nodes in holders.items():
            for n in nodes:
                entry = qs[i][1].get(n) if i >= 0 else None
                if entry is None:
                    unjudged += 1
                    open_.pop((vip, n), None)
                    continue
                since, key = lost[i].get(n), (vip, n)
                if since is None:  # quorate: whatever it holds is fine
                    if key in open_:
                        found.append(open_.pop(key))
                    continue
                if key not in open_:  # an episode, once begun, lasts while it holds the VIP without quorum
                    gained = prev is not None and n not in prev[1].get(vip, ()) and prev[0] >= since
                    # under ignore every VIP on an inquorate node is the finding, from its quorum loss on
                    late = no_quorum_policy == "ignore" or (no_quorum_policy != "freeze" and t - since > grace_s)
                    if not (gained or late):
                        continue
                    open_[key] = _Held(vip, n, since, t, t, gained=gained)
                held = open_[key]
                held.last, held.samples = t, held.samples + 1
        prev = (t, last_seen)
    found = sorted(found + list(open_.values()), key=lambda h: (h.first, h.vip, h.node))
    span = f"{len(vs)} VIP samples judged by {len(qs)} quorum samples" + (
        f" ({unjudged} holdings on nodes that had not answered, not judged)" if unjudged else ""
    )
    allowed = "" if no_quorum_policy == "freeze" else f" held past {grace_s:g} s or"
    shown = "; ".join(h.describe() for h in found[:5]) + (f"; ... (+{len(found) - 5} more)" if len(found) > 5 else "")
    if no_quorum_policy == "ignore":
        what = f"{len(found)} episodes of a VIP on an inquorate node: {shown}" if found else "none on an inquorate node"
        return Check(
            name,
            not (found and fail_when_ignored),
            f"no-quorum-policy=ignore: resources run without quorum as configured; {what} ({span})",
        )
    policy = f"no-quorum-policy={no_quorum_policy}"
    if not found:
        return Check(name, True, f"{span}: no VIP{allowed} gained on an inquorate node ({policy})")
    return Check(
        name, False, f"{len(found)} episodes of a VIP{allowed} gained on an inquorate node ({policy}): {shown} ({span})"
    )


@dataclass
class _Held:
    vip: str
    node: str
    lost_at: float
    first: float
    last: float
    samples: int = 0
    gained: bool = False

    def describe(self) -> str:
        how = "gained" if self.gained else "still held"
        ms = round((self.last - self.first) * 1000)
        return (
            f"{self.vip} {how} on {self.node} while inquorate (since {self.lost_at:.3f}): from {self.first:.3f} "
            f"for {ms} ms ({self.samples} samples)"
        )


def wait_for_all(history: History, nodes: Collection[str], since: float | None = None) -> Check:
    """No node quorate before every node of `nodes` has been a member at once (votequorum(5): "quorate for the
    first time only after all nodes have been visible at least once at the same time"), in the samples after
    `since` (when the cluster was started: wait_for_all guards a start, not a running cluster). A node's member list
    holding all of `nodes` is the moment they were all seen."""
    name = "quorum-wait-for-all"
    expected = set(nodes)
    samples = quorum_samples(history, since)
    if not expected:
        return Check(name, False, "no nodes given to wait for: nothing to judge")
    if not samples:
        return Check(name, False, "no quorum samples recorded: nothing to judge")
    if not any(v for _, v in samples):
        return Check(name, False, f"{len(samples)} quorum samples but no node ever answered: nothing to judge")
    all_seen: tuple[float, str] | None = None
    early: list[tuple[float, list[str], set[str]]] = []  # (time, quorate nodes, members seen by them)
    for t, view in samples:
        if all_seen is None:
            whole = sorted(n for n, e in view.items() if expected <= member_set(e))
            if whole:
                all_seen = (t, whole[0])
        if all_seen is None:
            quorate = sorted(n for n, e in view.items() if e["quorate"])
            if quorate:
                early.append((t, quorate, set().union(*(member_set(view[n]) for n in quorate))))
    span = sample_span(samples)
    when = (
        f"all {len(expected)} of {node_list(expected)} first members together at {all_seen[0]:.3f} "
        f"({all_seen[1]}'s view)"
        if all_seen
        else f"{node_list(expected)} never all members together"
    )
    if not early:
        return Check(name, True, f"{span}: {when}; no node quorate before")
    t0, first, members = early[0]
    missing = node_list(expected - members)
    return Check(
        name,
        False,
        f"{node_list(first)} quorate at {t0:.3f} with members {node_list(members)}, missing {missing}, in "
        f"{len(early)} samples before {when} ({span})",
    )


TRACKED = ("quorate", "expected", "quorum", "total")  # what a quorum transition names, besides the members


def quorum_transitions(history: History, since: float | None = None) -> list[dict[str, Any]]:
    """Every change of a node's votequorum state between successive samples where it answered: {"node", "time",
    "changes": {field: [before, after]}} (members as a sorted list), in time order. A node that stops answering
    (crashed, corosync down) and comes back shows the change across the gap, dated when it answered again."""
    last: dict[str, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    for t, view in quorum_samples(history, since):
        for node in sorted(view):
            now = {k: view[node].get(k) for k in TRACKED} | {"members": sorted(member_set(view[node]))}
            before = last.get(node)
            last[node] = now
            if before is None:
                continue
            changes = {k: [before[k], now[k]] for k in now if before[k] != now[k]}
            if changes:
                out.append({"node": node, "time": t, "changes": changes})
    return out


def grouped(transitions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Transitions of several nodes in one sample with the same changes, as one: {"nodes", "time", "changes"}."""
    out: list[dict[str, Any]] = []
    for tr in transitions:
        same = next((g for g in out if g["time"] == tr["time"] and g["changes"] == tr["changes"]), None)
        if same is None:
            out.append({"nodes": [tr["node"]], "time": tr["time"], "changes": tr["changes"]})
        else:
            same["nodes"].append(tr["node"])
    return out


def describe_transition(tr: Mapping[str, Any], origin: float) -> str:
    """`node1, node3 +1534 ms: quorate yes -> no, expected 7 -> 4, members 7 -> 4` (member lists as counts), for a
    transition of `grouped` (or one node's)."""

    def shown(k: str, v: Any) -> str:
        if k == "members":
            return str(len(v))
        return ("yes" if v else "no") if isinstance(v, bool) else str(v)

    parts = [f"{k} {shown(k, a)} -> {shown(k, b)}" for k, (a, b) in tr["changes"].items()]
    who = ", ".join(tr.get("nodes") or [tr["node"]])
    return f"{who} {round((tr['time'] - origin) * 1000):+d} ms: " + ", ".join(parts)
