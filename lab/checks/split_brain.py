"""Split brain as the observers saw it: a VIP held by 2+ nodes, or one shared disk mounted on 2+ nodes.

Observers sample every ~100 ms, so an episode's duration is measured between the first and the
last successive sample that showed it (a lower bound; 0 ms for a single sample).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from lab.checks.base import Check
from lab.history import INFO, History

Sample = tuple[float, dict[str, set[str]]]  # time, key (VIP or source device) -> nodes


@dataclass
class Episode:
    key: str
    first: float
    last: float
    samples: int = 1
    nodes: set[str] = field(default_factory=set)

    @property
    def duration_ms(self) -> int:
        return round((self.last - self.first) * 1000)

    def describe(self) -> str:
        nodes = ", ".join(sorted(self.nodes))
        seen = f"first seen at {self.first:.3f} for {self.duration_ms} ms ({self.samples} samples)"
        return f"{self.key} on [{nodes}] {seen}"


def _samples(history: History, f: str) -> list[tuple[float, Mapping]]:
    ops = history.select(f=f, type=INFO)
    return sorted(((o.time, o.value) for o in ops if isinstance(o.value, Mapping)), key=lambda s: s[0])


def _unanswered(history: History) -> dict[float, set[str]]:
    """The nodes each observer sample carried from their last look (lab/observer.py), by the sample's time."""
    return {t: set(value) for t, value in _samples(history, "unanswered")}


def vip_samples(history: History, heard_only: bool = True) -> list[Sample]:
    """VIP -> its holders per sample. heard_only: a node the sample did not hear from is not counted a holder there
    (what it was last seen with is no sighting of a second holder); else it is, as last seen (a timeline)."""
    silent = _unanswered(history) if heard_only else {}
    samples = _samples(history, "vip-holders")
    return [(t, {vip: set(nodes or ()) - silent.get(t, set()) for vip, nodes in value.items()}) for t, value in samples]


def _mount_samples(history: History) -> list[Sample]:
    silent = _unanswered(history)
    out: list[Sample] = []
    for t, value in _samples(history, "mounts"):
        by_source: dict[str, set[str]] = {}
        for node, mounts in value.items():
            if node in silent.get(t, set()):
                continue
            for source, _mountpoint in mounts or ():
                by_source.setdefault(source, set()).add(node)
        out.append((t, by_source))
    return out


def _episodes(samples: list[Sample]) -> list[Episode]:
    """Runs of successive samples in which a key is held by 2+ nodes, in order of first sighting."""
    open_: dict[str, Episode] = {}
    done: list[Episode] = []
    for t, holders in samples:
        for key in list(open_):
            if len(holders.get(key, ())) < 2:
                done.append(open_.pop(key))
        for key, nodes in holders.items():
            if len(nodes) < 2:
                continue
            ep = open_.setdefault(key, Episode(key, t, t, 0))
            ep.last, ep.samples = t, ep.samples + 1
            ep.nodes |= nodes
    return sorted(done + list(open_.values()), key=lambda e: (e.first, e.key))


def _verdict(name: str, what: str, samples: list[Sample], require_samples: bool, transient: int = 0) -> Check:
    if not samples:
        return Check(name, not require_samples, f"no {what} samples recorded: nothing to judge")
    all_episodes = _episodes(samples)
    episodes = [e for e in all_episodes if e.samples > transient]
    keys = {k for _, holders in samples for k in holders}
    span = f"{len(samples)} samples over {samples[-1][0] - samples[0][0]:.1f} s, {len(keys)} {what}"
    brief = [e for e in all_episodes if e.samples <= transient]
    if brief:  # said, never hidden: which overlaps were short enough to be a handover
        span += f"; {len(brief)} handover overlap(s) of <= {transient} sample(s): " + "; ".join(
            e.describe() for e in brief[:3]
        )
    if not episodes:
        return Check(name, True, f"{span}: never on 2+ nodes beyond that" if brief else f"{span}: never on 2+ nodes")
    shown = "; ".join(e.describe() for e in episodes[:5])
    more = f"; ... (+{len(episodes) - 5} more)" if len(episodes) > 5 else ""
    return Check(name, False, f"{len(episodes)} episodes on 2+ nodes: {shown}{more} ({span})")


def vip_holders(history: History, require_samples: bool = True, transient: int = 0) -> Check:
    """Fails if any sample shows a VIP on 2+ nodes (or, with `require_samples`, if there are no samples).

    `transient`: overlaps seen in at most that many successive samples are reported, not failed. VRRP hands a VIP
    over by the new MASTER adding it before the old one, on its advert, removes it: both hold it for a moment
    (measured here: one 100 ms sample in a `chk_haproxy` handover). Pacemaker stops before it starts: 0 there."""
    return _verdict("vip-holders", "VIPs", vip_samples(history), require_samples, transient)


def double_mounts(history: History, require_samples: bool = True) -> Check:
    """Fails if any sample shows one source device mounted on 2+ nodes.

    The lab's shared disk is a stand-in on which a double mount corrupts nothing visible, so the
    mount tables are the only evidence of it.
    """
    return _verdict("double-mounts", "devices", _mount_samples(history), require_samples)


def vip_timeline(history: History, vip: str) -> list[tuple[float, tuple[str, ...]]]:
    """(time, sorted holders) at the first sample and at each sample where the holders changed."""
    out: list[tuple[float, tuple[str, ...]]] = []
    for t, holders in vip_samples(history, heard_only=False):
        nodes = tuple(sorted(holders.get(vip, ())))
        if not out or out[-1][1] != nodes:
            out.append((t, nodes))
    return out


def vip_moves(history: History, vip: str, since: float) -> tuple[str | None, str | None, float | None]:
    """(single holder at the last sample before `since`, first different single holder after, when).

    The holder before is None unless exactly one node held the VIP; the move is (None, None) when no
    later sample shows one node other than it holding the VIP.
    """
    before: str | None = None
    for t, nodes in vip_timeline(history, vip):
        if t < since:
            before = nodes[0] if len(nodes) == 1 else None
        elif len(nodes) == 1 and nodes[0] != before:
            return before, nodes[0], t
    return before, None, None


def split_brain_in_window(
    history: History,
    since: float,
    until: float | None = None,
    *,
    transient: int = 0,
    mounts: bool = False,
    outlive_s: float | None = None,
) -> Check:
    """A split-brain the trial expects: passes only when a VIP (or, with `mounts`, a shared disk) was on 2+ nodes in
    more than `transient` successive samples, first seen in [since, until) (the fault's window), and on no node
    twice before `since` (a double VIP already there proves nothing about the fault). No samples after `since` is a
    failure: a blind observer detects nothing. With `outlive_s` and a heal at `until`, no VIP or disk may still be on
    2+ nodes `outlive_s` after the heal: once healed, the cluster must resolve the split."""
    vips = vip_samples(history)
    kinds = [vips, _mount_samples(history)] if mounts else [vips]
    name = "split-brain in the fault's window"
    after = [s for kind in kinds for s in kind if s[0] >= since]
    if len(after) < 2:
        return Check(name, False, f"{len(after)} observer samples after the fault: too few to detect anything")
    # episodes per kind of sample: a VIP sample followed by a mounts sample must not end the VIP's episode
    found = sorted((e for kind in kinds for e in _episodes(kind)), key=lambda e: (e.first, e.key))
    episodes = [e for e in found if e.samples > transient]
    before = [e for e in episodes if e.first < since]
    inside = [e for e in episodes if e.first >= since and (until is None or e.first < until)]
    window = f"[{since:.3f}, {'end' if until is None else f'{until:.3f}'})"
    if before:
        return Check(name, False, f"already split before the fault: {before[0].describe()}")
    if not inside:
        late = [e for e in episodes if until is not None and e.first >= until]
        seen = f"; only after it: {late[0].describe()}" if late else ""
        return Check(name, False, f"no episode on 2+ nodes first seen in the fault's window {window}{seen}")
    if outlive_s is not None and until is not None:
        # one that began after the heal counts too: resolving a split may stop and start both sides (multiple-active)
        stuck = [e for e in episodes if e.first >= since and e.last > until + outlive_s]
        if stuck:
            e = stuck[0]
            return Check(
                name,
                False,
                f"still split {e.last - until:.1f} s after the heal (allowed {outlive_s:.1f} s): {e.describe()}",
            )
    shown = "; ".join(e.describe() for e in inside[:3])
    return Check(name, True, f"{len(inside)} episode(s) first seen in {window}: {shown} ({len(after)} samples after)")
