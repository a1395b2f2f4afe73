"""At most one quorate partition at a time: split brain at the quorum level, judged from the observer's `quorum`
samples (lab/checks/quorum.py).

A sample asks every node at about the same moment, not at one instant, and a node's corosync notices a membership
change only after token + consensus: a sample can show two quorate partitions of which one is merely behind.
Corosync names each membership by its ring id, "<representative node id>.<sequence>" (hex); a new membership takes
a sequence above every one its members had, so a higher sequence is a newer ring. A quorate partition is
*superseded* when a newer ring holds one of its nodes or one of the nodes it lists: it is behind, not a second
cluster. It is behind too when a node on its own ring says that ring is not quorate: every member of a ring counts
the same votes, so one of them is still showing the flag from before the change (seen in CI: a partition made two
rings of the same sequence, 1.3e and 2.3e, and node3 on 1.3e said quorate for one sample while node1 and node7 on
1.3e already said not). A node may stay on a superseded ring for at most `stale_s`; two quorate partitions that
are not superseded are a split, and always fail.

Answers without a ring id (histories recorded before the observer kept it) fall back to the listing rule: a
partition that lists a node of another quorate partition is the one behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lab.checks.base import Check
from lab.checks.quorum import View, member_set, node_list, quorum_samples, sample_span
from lab.history import History


def partitions(view: View) -> list[frozenset[str]]:
    """The quorate partitions of one sample: quorate nodes that list each other as members, grouped (sorted)."""
    quorate = {n: member_set(e) for n, e in view.items() if e["quorate"]}
    found: list[frozenset[str]] = []
    placed: set[str] = set()
    for start in sorted(quorate):
        if start in placed:
            continue
        part, todo = {start}, [start]
        while todo:
            a = todo.pop()
            for b in quorate:
                if b not in part and b in quorate[a] and a in quorate[b]:
                    part.add(b)
                    todo.append(b)
        placed |= part
        found.append(frozenset(part))
    return found


def ring_sequence(ring_id: object) -> int | None:
    """The sequence of a corosync 3 ring id ("1.2c" -> 44); None when there is none or it is not one."""
    if not isinstance(ring_id, str) or "." not in ring_id:
        return None
    try:
        return int(ring_id.rsplit(".", 1)[1], 16)
    except ValueError:
        return None


def superseded(view: View, parts: list[frozenset[str]]) -> list[frozenset[str]]:
    """The partitions of `parts` that are behind (see the module's docstring)."""
    seq = {n: ring_sequence(e.get("ring_id")) for n, e in view.items()}
    ring = {n: e.get("ring_id") for n, e in view.items()}
    behind: list[frozenset[str]] = []
    for p in parts:
        own = {ring[n] for n in p if ring[n]}
        if any(ring[n] in own and view[n].get("quorate") is False for n in view if n not in p):
            behind.append(p)  # its own ring's members say not quorate: its flag is from before the change
            continue
        listed = set().union(*(member_set(view[n]) for n in p))
        others = [n for n in view if n not in p]
        if all(seq[n] is not None for n in p) and all(seq[n] is not None for n in others):
            top = max(seq[n] or 0 for n in p)
            newer = [n for n in others if (seq[n] or 0) > top]
            if any(n in listed or member_set(view[n]) & p for n in newer):
                behind.append(p)
        elif any(listed & q for q in parts if q != p):  # no ring ids: the listing rule
            behind.append(p)
    return behind


@dataclass
class _Episode:
    """A run of samples with 2+ quorate partitions."""

    first: float
    last: float
    samples: int = 0
    split: bool = False
    parts: set[frozenset[str]] = field(default_factory=set)
    # (node, its ring id) -> [first, last] time it was seen on that ring while the ring was superseded
    stale: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def longest(self) -> tuple[float, str]:
        spans = [(b - a, f"{n} on ring {r or '?'}") for (n, r), (a, b) in self.stale.items()]
        return max(spans, default=(0.0, "nobody"))

    def describe(self) -> str:
        kind = "split (quorate partitions on rings none supersedes)" if self.split else "stale view (a superseded ring)"
        shown = " and ".join(node_list(p) for p in sorted(self.parts, key=sorted))
        ms = round((self.last - self.first) * 1000)
        said = f"{kind} {shown} first seen at {self.first:.3f} for {ms} ms ({self.samples} samples)"
        if not self.split:
            held, who = self.longest()
            said += f", longest on a superseded ring: {who} for {round(held * 1000)} ms"
        return said


def _episodes(view_samples: list[tuple[float, View]]) -> tuple[list[_Episode], set[frozenset[str]]]:
    episodes: list[_Episode] = []
    current: _Episode | None = None
    seen: set[frozenset[str]] = set()
    for t, view in view_samples:
        parts = partitions(view)
        seen |= set(parts)
        if len(parts) < 2:
            current = None
            continue
        if current is None:
            current = _Episode(t, t)
            episodes.append(current)
        current.last, current.samples = t, current.samples + 1
        behind = superseded(view, parts)
        current.split |= len(parts) - len(behind) >= 2
        current.parts |= set(parts)
        for n in (n for p in behind for n in p):
            when = current.stale.setdefault((n, str(view[n].get("ring_id") or "")), [t, t])
            when[1] = t
    return episodes, seen


def quorum_partitions(history: History, stale_s: float | None = None, since: float | None = None) -> Check:
    """Fails when one sample shows two quorate partitions that are both current (a split brain at the quorum
    level), or when a node stays longer than `stale_s` on a superseded ring (the caller's token + consensus, and
    the observer's own lag). `stale_s` None: any second quorate partition fails."""
    name = "quorum-partitions"
    samples = quorum_samples(history, since)
    if not samples:
        return Check(name, False, "no quorum samples recorded: nothing to judge")
    if not any(v for _, v in samples):
        return Check(name, False, f"{len(samples)} quorum samples but no node ever answered: nothing to judge")
    episodes, seen = _episodes(samples)
    quorate = "; quorate partitions seen: " + (", ".join(node_list(p) for p in sorted(seen, key=sorted)) or "none")
    bad = [e for e in episodes if e.split or stale_s is None or e.longest()[0] > stale_s]
    brief = [e for e in episodes if e not in bad]
    said = f"; {len(brief)} stale view(s) within {stale_s} s: " + "; ".join(e.describe() for e in brief[:3])
    said = said if brief else ""
    looked = sample_span(samples)
    if not bad:
        return Check(name, True, f"{looked}: at most one current quorate partition at a time{said}{quorate}")
    shown = "; ".join(e.describe() for e in bad[:5]) + (f"; ... (+{len(bad) - 5} more)" if len(bad) > 5 else "")
    return Check(name, False, f"{len(bad)} episodes of 2+ quorate partitions: {shown} ({looked}{said})")
