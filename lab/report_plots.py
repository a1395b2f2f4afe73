"""The plots of the HTML report (lab/report_html.py), drawn from one trial's history as PNG bytes.

Matplotlib's object API with the Agg canvas, never pyplot: no global figure state, no display, no backend choice
that depends on the host. What each plot shows is derived here from the history alone, so a plot and the checks
read the same records.
"""

from __future__ import annotations

import io
import math
import multiprocessing as mp
import os
import sys
import textwrap
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator
from PIL import Image

from lab.history import FAIL, INFO, INVOKE, OK, History, Op

PENDING = "pending"  # an invoke that never completed within the history
# Jepsen's colours: ok green, fail red, info (indeterminate) orange
TYPE_COLOURS = {OK: "#2ca02c", FAIL: "#d62728", INFO: "#ff7f0e", PENDING: "#7f7f7f"}
TYPE_NAMES = {OK: "ok", FAIL: "fail", INFO: "indeterminate (info)", PENDING: "pending (never returned)"}
STATE_COLOURS = {"held": "#1f77b4", "shared": "#d62728", "quorate": "#2ca02c", "inquorate": "#7f0000"}
STATE_NAMES = {
    "held": "held by this node only",
    "shared": "held by 2+ nodes at once",
    "quorate": "quorate",
    "inquorate": "not quorate",
}
FAULT_COLOURS = ("#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#1f77b4", "#ff9896", "#c5b0d5")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
# f values that are observations or fault marks, not client operations (the AMQP consumer's pause/resume/queue
# readings included)
NOT_CLIENT = {"vip-holders", "mounts", "quorum", "observer-error", "fault", "heal", "fault-failed"}
NOT_CLIENT |= {"pause", "resume", "queued"}
WIDTH_IN, DPI = 13.5, 90
MAX_WORKERS = 4  # processes drawing figures at once (draw_all)
# Fixed margins (inches) for the row labels on the left and the legend on the right: matplotlib's constrained layout
# would fit them exactly but doubles the time a figure takes (one per trial).
MIN_LEFT_IN, RIGHT_IN, BOTTOM_IN, TOP_IN = 1.9, 2.7, 0.5, 0.35
LABEL_CHAR_IN = 0.075  # an 8 pt character, on average: the left margin grows with the longest row label
LEGEND_CHARS = 36  # a longer legend label is wrapped: the right margin is fixed


@dataclass(frozen=True)
class Window:
    """A fault's time span: from its fault mark to its heal (or the trial's end when it was never healed)."""

    label: str
    start: float
    end: float
    healed: bool


@dataclass(frozen=True)
class Span:
    """One client operation: invoke to completion. A completion without an invoke (a consumer's delivery) is a
    zero-length span; an invoke without a completion is PENDING to the end of the history."""

    process: str
    f: str
    start: float
    end: float
    type: str
    has_invoke: bool = True


@dataclass
class Lane:
    """One row of the holders plot: (start, end, state) segments for one node and one VIP, device or quorum."""

    label: str
    segments: list[tuple[float, float, str]] = field(default_factory=list)


def fault_label(value: object) -> str:
    """`crash node1`, `kill_service:mysql node2`, `cut node1 ring0`: the report's label plus the target."""
    if not isinstance(value, Mapping):
        return str(value)
    name = str(value.get("fault", "?"))
    if value.get("service"):
        name += f":{value['service']}"
    extra = f" {value['network']}" if value.get("network") else ""
    return f"{name} {value.get('target', '?')}{extra}"


def _fault_key(value: object) -> tuple[object, object]:
    return (value.get("fault"), value.get("target")) if isinstance(value, Mapping) else (value, None)


def fault_windows(history: History, end: float) -> list[Window]:
    """Nemesis marks paired up: a heal (or a failed apply) closes the open fault with the same value, else the newest
    with the same fault and target; a fault never closed lasts to `end`."""
    open_: list[Op] = []
    out: list[Window] = []
    for o in history.select(process="nemesis", f=("fault", "heal", "fault-failed")):
        if o.f == "fault":
            open_.append(o)
            continue
        match = next((p for p in open_ if p.value == o.value), None)
        if match is None:
            match = next((p for p in reversed(open_) if _fault_key(p.value) == _fault_key(o.value)), None)
        if match is None:
            continue  # a heal of a fault applied before this history began: nothing to shade
        open_.remove(match)
        suffix = " (failed to apply)" if o.f == "fault-failed" else ""
        out.append(Window(fault_label(match.value) + suffix, match.time, o.time, True))
    out += [Window(fault_label(p.value), p.time, max(end, p.time), False) for p in open_]
    return sorted(out, key=lambda w: w.start)


def client_spans(history: History, end: float) -> list[Span]:
    """Pairs each completion with its process's pending invoke of the same f (the same value when there is one)."""
    pending: dict[tuple[str, str], list[Op]] = {}
    out: list[Span] = []
    for o in history:
        if o.f in NOT_CLIENT or o.process in ("nemesis", "observer"):
            continue
        queue = pending.setdefault((o.process, o.f), [])
        if o.type == INVOKE:
            queue.append(o)
            continue
        if o.type not in (OK, FAIL, INFO):
            continue
        # the invoke carrying this completion's value, else the oldest pending one
        inv = next((i for i in queue if i.value == o.value), queue[0]) if queue else None
        if inv is None:
            out.append(Span(o.process, o.f, o.time, o.time, o.type, has_invoke=False))
        else:
            queue.remove(inv)
            out.append(Span(o.process, o.f, inv.time, o.time, o.type))
    out += [Span(i.process, i.f, i.time, max(end, i.time), PENDING) for q in pending.values() for i in q]
    return sorted(out, key=lambda s: s.start)


def _segments(states: list[tuple[float, str | None]], end: float) -> list[tuple[float, float, str]]:
    """Runs of equal state between successive samples; a sample's state lasts until the next sample (or `end`)."""
    out: list[tuple[float, float, str]] = []
    for i, (t, state) in enumerate(states):
        nxt = states[i + 1][0] if i + 1 < len(states) else end
        if state is None:
            continue
        if out and out[-1][2] == state and out[-1][1] == t:
            out[-1] = (out[-1][0], nxt, state)
        else:
            out.append((t, nxt, state))
    return out


def _held(kind: str, value: Mapping) -> dict[str, set[str]]:
    """One sample as {what: nodes}: vip-holders is {vip: [nodes]}, mounts is {node: [[device, mountpoint], ...]}."""
    if kind == "vip-holders":
        return {f"VIP {k}": set(v or ()) for k, v in value.items()}
    held: dict[str, set[str]] = {}
    for node, mounts in value.items():
        for m in mounts or ():
            held.setdefault(f"mount {m[0]}", set()).add(node)
    return held


def holder_lanes(history: History) -> list[Lane]:
    """Per node and VIP (observer `vip-holders` samples) and per node and shared device (`mounts`): when that node
    held it, and whether another node held it too. Only pairs that were ever held get a lane."""
    per_kind: dict[str, list[tuple[float, dict[str, set[str]]]]] = {}
    for kind in ("vip-holders", "mounts"):
        ops = history.select(f=kind, type=INFO)
        samples = [(o.time, _held(kind, o.value)) for o in ops if isinstance(o.value, Mapping)]
        if samples:
            per_kind[kind] = samples
    rows: dict[tuple[str, str], Lane] = {}
    for samples in per_kind.values():
        keys = sorted({k for _, h in samples for k in h})
        nodes = sorted({n for _, h in samples for ns in h.values() for n in ns})
        for node in nodes:
            for key in keys:
                states = [
                    (t, None if node not in h.get(key, ()) else "shared" if len(h[key]) > 1 else "held")
                    for t, h in samples
                ]
                segs = _segments(states, samples[-1][0])
                if segs:
                    rows[(node, key)] = Lane(f"{node} · {key}", segs)
    return [rows[k] for k in sorted(rows)]  # by node, then VIPs before mounts


def _quorate(v: object) -> bool | None:
    if isinstance(v, Mapping):
        v = v.get("quorate")
    return v if isinstance(v, bool) else None


def quorum_lanes(history: History) -> list[Lane]:
    """Per node, from `quorum` samples shaped {node: {"quorate": bool, ...}} (or {node: bool})."""
    samples = [(o.time, o.value) for o in history.select(f="quorum") if isinstance(o.value, Mapping)]
    if not samples:
        return []
    end = samples[-1][0]
    nodes = sorted({str(n) for _, v in samples for n in v})
    lanes = []
    for node in nodes:
        states: list[tuple[float, str | None]] = []
        for t, v in samples:
            q = _quorate(v.get(node))
            states.append((t, None if q is None else "quorate" if q else "inquorate"))
        lanes.append(Lane(f"{node} · quorum", _segments(states, end)))
    return lanes


def _shade(ax: Axes, windows: list[Window], t0: float) -> list[Patch]:
    """Every fault's window as a translucent band behind the data; returns the legend entries."""
    handles = []
    for i, w in enumerate(windows):
        colour = FAULT_COLOURS[i % len(FAULT_COLOURS)]
        ax.axvspan(w.start - t0, w.end - t0, color=colour, alpha=0.18, lw=0, zorder=0)
        ax.axvline(w.start - t0, color=colour, lw=1, zorder=1)
        label = textwrap.fill(w.label + ("" if w.healed else " (not healed)"), LEGEND_CHARS)
        handles.append(Patch(color=colour, alpha=0.4, label=label))
    return handles


def _bars(ax: Axes, bars: list[tuple[float, float]], row: int, colour: str, px: float) -> None:
    """(start, end) bars on one row as one collection, each at least 1.5 px wide and merged across gaps under a pixel
    (invisible anyway; a dense run of ops is thousands of bars). Crisp edges: anti-aliased, thin bars would fade
    into the background. broken_barh would convert units bar by bar, most of a timeline's time."""
    merged: list[list[float]] = []
    for a, b in sorted(bars):
        b = max(b, a + 1.5 * px)
        if merged and a <= merged[-1][1] + px:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    verts = [((a, row - 0.35), (a, row + 0.35), (b, row + 0.35), (b, row - 0.35)) for a, b in merged]
    ax.add_collection(PolyCollection(verts, facecolors=colour, linewidths=0, antialiased=False, zorder=2))


def _rows(ax: Axes, labels: list[str]) -> None:
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylim(len(labels) - 0.5, -0.5)  # first row on top


def _processes(spans: Iterable[Span]) -> list[str]:
    return sorted({s.process for s in spans}, key=lambda p: (p.startswith("probe-"), p))  # clients, then probes


def _draw_timeline(ax: Axes, spans: list[Span], t0: float, px: float) -> list:
    """Jepsen's timeline: a row per client process, each op a bar from invoke to completion coloured by outcome."""
    processes = _processes(spans)
    for row, process in enumerate(processes):
        for kind in (OK, INFO, FAIL, PENDING):  # ok first: failures are drawn over the dense green
            bars = [(s.start - t0, s.end - t0) for s in spans if s.process == process and s.type == kind]
            if bars:
                _bars(ax, bars, row, TYPE_COLOURS[kind], px)
    _rows(ax, processes)
    ax.set_title("client operations per process, invoke to completion", fontsize=9, loc="left", y=1.0)
    kinds = {s.type for s in spans}
    return [Patch(color=TYPE_COLOURS[k], label=TYPE_NAMES[k]) for k in TYPE_COLOURS if k in kinds]


def _draw_latency(ax: Axes, spans: list[Span], t0: float) -> list:
    """Each op's latency at its invoke time, colour by outcome, marker by process (Jepsen's latency-raw)."""
    timed = [s for s in spans if s.has_invoke]
    handles: list = []
    for i, process in enumerate(_processes(timed)):
        marker = MARKERS[i % len(MARKERS)]
        for kind in (OK, INFO, FAIL, PENDING):
            pts = [s for s in timed if s.process == process and s.type == kind]
            if pts:
                x = [s.start - t0 for s in pts]
                y = [max((s.end - s.start) * 1000, 0.01) for s in pts]
                big = kind != OK
                ax.scatter(x, y, s=22 if big else 9, marker=marker, c=TYPE_COLOURS[kind], lw=0, zorder=4 if big else 3)
        handles.append(Line2D([], [], ls="", marker=marker, color="#333333", label=process))
    ax.set_yscale("log")
    # plain decade labels: matplotlib's default 10^n labels go through mathtext, a third of this panel's time
    ms = [max((s.end - s.start) * 1000, 0.01) for s in timed] or [1.0]
    lo, hi = math.floor(math.log10(min(ms))), math.ceil(math.log10(max(ms)))
    decades = [10.0**n for n in range(lo, max(hi, lo + 1) + 1)]
    ax.yaxis.set_major_locator(FixedLocator(decades))
    ax.yaxis.set_major_formatter(FixedFormatter([f"{d:g}" for d in decades]))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_ylim(decades[0] / 1.3, decades[-1] * 1.3)  # whole decades, no point on the frame
    ax.set_ylabel("ms (log)", fontsize=8)
    ax.set_title("latency of each op at its invoke time (pending: until the end)", fontsize=9, loc="left", y=1.0)
    return handles


def _draw_holders(ax: Axes, lanes: list[Lane], t0: float, px: float) -> list:
    """Which node held each VIP and shared device, and each node's quorum, over time."""
    states: set[str] = set()
    for row, lane in enumerate(lanes):
        for state, colour in STATE_COLOURS.items():
            bars = [(a - t0, b - t0) for a, b, s in lane.segments if s == state]
            if bars:
                states.add(state)
                _bars(ax, bars, row, colour, px)
    _rows(ax, [lane.label for lane in lanes])
    ax.set_title("VIP holders, shared mounts and quorum per node (observer samples)", fontsize=9, loc="left", y=1.0)
    return [Patch(color=STATE_COLOURS[s], label=STATE_NAMES[s]) for s in STATE_COLOURS if s in states]


def trial_png(spans: list[Span], lanes: list[Lane], windows: list[Window], t0: float, t1: float) -> bytes:
    """The trial's panels stacked on one time axis (those with data): client ops, their latency, holders.

    One figure rather than three: the panels line up in time, and a figure's fixed cost (ticks, text, PNG
    encoding) is most of what drawing one takes."""
    panels: list[tuple[str, float]] = []  # (kind, height in inches)
    if spans:
        panels.append(("timeline", 0.25 * len(_processes(spans)) + 0.3))
    if any(s.has_invoke for s in spans):  # a consumer's deliveries alone have no latency
        panels.append(("latency", 2.2))
    if lanes:
        panels.append(("holders", 0.25 * len(lanes) + 0.3))
    if not panels:
        raise ValueError("nothing to plot: no client ops and no observer samples")
    labels = [s.process for s in spans] + [lane.label for lane in lanes]
    left_in = max(MIN_LEFT_IN, 0.3 + LABEL_CHAR_IN * max(map(len, labels), default=0))
    gap_in = 0.45  # room for each panel's title
    height = BOTTOM_IN + TOP_IN + sum(h for _, h in panels) + gap_in * (len(panels) - 1)
    fig = Figure(figsize=(WIDTH_IN, height), dpi=DPI)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(
        len(panels),
        1,
        height_ratios=[h for _, h in panels],
        hspace=gap_in / (sum(h for _, h in panels) / len(panels)),
        left=left_in / WIDTH_IN,
        right=1 - RIGHT_IN / WIDTH_IN,
        bottom=BOTTOM_IN / height,
        top=1 - TOP_IN / height,
    )
    span_s = max(t1 - t0, 1.0)
    px = span_s / ((WIDTH_IN - left_in - RIGHT_IN) * DPI)  # seconds per pixel
    first: Axes | None = None
    for i, (kind, _) in enumerate(panels):
        ax = fig.add_subplot(grid[i], sharex=first)
        first = first or ax
        faults = _shade(ax, windows, t0)
        if kind == "timeline":
            handles = _draw_timeline(ax, spans, t0, px)
        elif kind == "latency":
            handles = _draw_latency(ax, spans, t0)
        else:
            handles = _draw_holders(ax, lanes, t0, px)
        handles += faults if i == 0 else []  # the fault legend once, at the top
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(labelsize=8, labelbottom=i == len(panels) - 1)
    assert first is not None
    first.set_xlim(0, span_s)
    ax.set_xlabel("seconds since the trial's first record", fontsize=9)
    return _png(fig)


def _png(fig: Figure) -> bytes:
    """The figure as a 256-colour PNG: a plot has few colours (plus their anti-aliased edges), and a palette image is
    a third the size of matplotlib's RGBA PNG and quicker to encode."""
    canvas = fig.canvas
    assert isinstance(canvas, FigureCanvasAgg)
    canvas.draw()
    width, height = canvas.get_width_height(physical=True)
    rgb = Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB")
    buf = io.BytesIO()
    rgb.quantize(256, method=Image.Quantize.FASTOCTREE).save(buf, format="png")
    return buf.getvalue()


Job = tuple[list[Span], list[Lane], list[Window], float, float]  # trial_png's arguments


def _draw(job: Job) -> bytes | str:
    try:
        return trial_png(*job)
    except Exception as exc:  # one trial's broken plot must not cost the page the others: its text says why
        return repr(exc)


def draw_all(jobs: list[Job]) -> list[bytes | str]:
    """trial_png of each job (a PNG, or the error as text), in order; on forked workers when that is safe.

    A figure is ~0.3 s of CPU, nearly all matplotlib; a suite run has ~8. fork() copies the imported matplotlib
    (spawned workers would import it again, ~0.7 s each), and is safe only in a process with no other thread (a
    thread holding a lock at the fork leaves it locked in the child): otherwise, and on one CPU, in this process."""
    workers = min(len(jobs), os.cpu_count() or 1, MAX_WORKERS)
    if workers > 1 and threading.active_count() == 1 and "fork" in mp.get_all_start_methods():
        # a forked worker flushes the stdio buffers it inherited when it exits: empty them first, or they print twice
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
                return list(pool.map(_draw, jobs))
        except (OSError, BrokenProcessPool):
            pass  # no processes to be had (limits, a killed worker): draw them here
    return [_draw(job) for job in jobs]
