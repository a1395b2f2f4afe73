"""report.html: one self-contained page per run, for people (report.json stays the record machines read).

The page is built from what the run left on disk: report.json (header, events, checks, notes) and each trial's
history (trials/<name>/history.jsonl, or its per-client *.jsonl merged when the trial never finished). Plots are
PNGs inline as base64 (lab/report_plots.py); there is no script, stylesheet, font or image to fetch, so the file
reads the same from a CI artifact, a mail attachment or a laptop offline. Whatever is missing (report.json, a
trial's history, observer samples) is said on the page instead of failing the page.
"""

from __future__ import annotations

import base64
import json
import re
import struct
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from lab import report_plots as plots
from lab.checks.availability import MEASURED_BY
from lab.checks.quorum import describe_transition, grouped
from lab.floors import LIMIT_FACTOR
from lab.history import History
from lab.report import iso_utc, vip_move_text

MERGED = "history.jsonl"  # lab/trial.py's merged dump (not imported: trial.py pulls in the whole lab)
# how far outside a trial's first and last record an event's fault time may lie and still be that trial's
EVENT_SLACK_S = 1.0

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 1280px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .6em 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 6px; }
th { background: #f3f3f3; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
#events { overflow-x: auto; } #events td { white-space: nowrap; }
tr.fail td, td.bad { background: #fde8e8; color: #a00; } .pass { color: #176b17; font-weight: 600; }
.failed { color: #b00; font-weight: 600; } .verdict { font-size: 1.3em; padding: 0 .4em; }
.missing { color: #8a5a00; background: #fff6e0; padding: 2px 6px; } small { color: #666; }
ul.notes li { white-space: pre-wrap; font-family: ui-monospace, monospace; font-size: 12px; }
img.plot { max-width: 100%; height: auto; border: 1px solid #eee; } .meta td:first-child { font-weight: 600; }
"""


@dataclass
class TrialView:
    """One trial's directory and what could be read of it."""

    name: str
    history: History
    source: str  # where the history came from, or why there is none
    t0: float | None = None
    t1: float | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    windows: list[plots.Window] = field(default_factory=list)
    spans: list[plots.Span] = field(default_factory=list)
    lanes: list[plots.Lane] = field(default_factory=list)  # VIP and mount holders, then quorum
    quorum_sampled: bool = False
    plot: bytes | str | None = None  # the PNG, or why it failed; None: nothing to plot

    @property
    def anchor(self) -> str:
        return "trial-" + re.sub(r"[^A-Za-z0-9_-]", "-", self.name)


def write_html(run_dir: Path) -> Path:
    """Write run_dir/report.html from run_dir/report.json and run_dir/trials/*/; returns its path."""
    out = run_dir / "report.html"
    run_dir.mkdir(parents=True, exist_ok=True)
    out.write_text(render(run_dir), encoding="utf-8")
    return out


def load_report(run_dir: Path) -> tuple[dict[str, Any], str | None]:
    """report.json as a dict, and what was wrong with it (None: nothing)."""
    path = run_dir / "report.json"
    if not path.exists():
        return {}, f"{path.name} is missing: no header, events, checks or notes"
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return {}, f"{path.name} could not be read: {exc}"
    return (data, None) if isinstance(data, dict) else ({}, f"{path.name} is not a JSON object")


def load_trial(trial_dir: Path) -> TrialView:
    """The merged history.jsonl when the trial finished; else its per-client files merged here."""
    merged = trial_dir / MERGED
    if merged.exists():
        history, source = History.load(merged), MERGED
    else:
        parts = sorted(p for p in trial_dir.glob("*.jsonl") if p.name != MERGED)
        history = History.load(*parts)
        source = f"no {MERGED} (the trial did not finish); merged from " + (
            ", ".join(p.name for p in parts) if parts else "nothing: no *.jsonl in the trial directory"
        )
    view = TrialView(trial_dir.name, history, source)
    if history.ops:
        view.t0, view.t1 = history.ops[0].time, history.ops[-1].time
        # history.jsonl is written when the trial finishes; a test heals its fault after that, into nemesis*.jsonl
        late = [o for o in History.load(*trial_dir.glob("nemesis*.jsonl")) if o.time > view.t1]
        view.windows = plots.fault_windows(History(history.ops + late), view.t1)
        view.spans = plots.client_spans(history, view.t1)
        quorum = plots.quorum_lanes(history)
        view.lanes = plots.holder_lanes(history) + quorum
        view.quorum_sampled = bool(quorum)
    return view


def _epoch(at: object) -> float | None:
    try:
        return datetime.fromisoformat(str(at)).timestamp()
    except ValueError:
        return None


def _attribute(events: list[dict[str, Any]], trials: list[TrialView]) -> dict[int, TrialView]:
    """Event index -> the trial whose history spans its fault time (events do not name their trial)."""
    out: dict[int, TrialView] = {}
    for i, e in enumerate(events):
        at = _epoch(e.get("at"))
        for t in trials:
            if (
                at is not None
                and t.t0 is not None
                and t.t1 is not None
                and t.t0 - EVENT_SLACK_S <= at <= t.t1 + EVENT_SLACK_S
            ):
                out[i] = t
                t.events.append(e)
                break
    return out


def _ms(v: object) -> str:
    return "-" if v is None else escape(str(v))


def _hms(epoch: float) -> str:
    return iso_utc(epoch)[11:]  # 10:51:59.639Z


def _table(head: list[str], rows: list[str]) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _events_html(events: list[dict[str, Any]], where: dict[int, TrialView]) -> str:
    if not events:
        return '<p class="missing">no events in this report (no fault was injected, or report.json is missing)</p>'
    rows = []
    for i, e in enumerate(events):
        trial = where.get(i)
        link = f'<a href="#{trial.anchor}">{escape(trial.name)}</a>' if trial else "-"
        down, bound, floor = e.get("downtime_ms"), e.get("bound_ms"), e.get("floor_ms")
        # a downtime past its limit (or, without one, its bound), or below its floor, is what the checks fail on
        limit = e.get("limit_ms") if e.get("limit_ms") is not None else bound
        late = down is None or (isinstance(limit, int) and isinstance(down, int) and down > limit)
        late = late or (isinstance(floor, int) and isinstance(down, int) and down < floor)
        shown = "never recovered" if down is None else escape(str(down))
        frm = [escape(h) for h in e.get("vip_from") or []]  # each holder escaped: the "+" and "-" need none
        to = [escape(h) for h in e.get("vip_to") or []]
        move = vip_move_text(e.get("vip"), frm, to, e.get("flap", False), arrow=" &rarr; ")
        moved = "-" if move is None else f"{move} <small>{escape(str(e['vip']))}</small>"
        at = _epoch(e.get("at"))
        cells = [
            link,
            escape(str(e.get("fault", "?")) + (f" {e.get('nth')}/{n}" if (n := e.get("outages") or 1) > 1 else "")),
            escape(str(e.get("target", "?"))),
            escape(_hms(at) if at is not None else str(e.get("at", "?"))),
            escape(str(e.get("service") or "-")),
            f'<td class="num{" bad" if late else ""}">{shown}</td>',
            f'<td class="num">{_ms(floor)}</td>',
            f'<td class="num">{_ms(e.get("limit_ms"))}</td>',
            f'<td class="num">{_ms(bound)}</td>',
            moved,
            escape(str(e.get("recovered_on") or "-")),
            f'<td class="num">{_ms(e.get("failed_ops"))} / {_ms(e.get("indeterminate_ops"))}</td>',
            f'<td class="num">{_ms(e.get("probe_gap_ms"))}</td>',
        ]
        rows.append("<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in cells) + "</tr>")
    head = ["trial", "fault", "target", "at (UTC)", "service", "downtime_ms", "floor_ms", "limit_ms", "bound_ms"]
    head += ["VIP moved"]
    head += ["recovered on", "failed / indet. ops", "probe_gap_ms"]
    return '<div id="events">' + _table(head, rows) + "</div>"


def _measured_html(events: list[dict[str, Any]]) -> str:
    how = sorted({str(e["measured_by"]) for e in events if e.get("measured_by")}) or [MEASURED_BY]
    return (
        "<p><b>downtime_ms</b> is measured from the clients' histories, "
        + "; ".join(escape(h) for h in how)
        + " (acknowledged: a client saw the op succeed); a stretch with no acknowledgement longer than the history's "
        "resolution is an outage too, even when no op failed (requests that hang). "
        "<b>probe_gap_ms</b>: the same measure on a TCP connect probe to the service's VIP. "
        "<b>floor_ms</b>: the least the failover could take, a true lower bound (lab/floors.py: corosync's token + "
        "consensus where membership changes, the measured ops of the group members before the service, and the "
        "service's start request until the clients' first answer). "
        f"<b>limit_ms</b>: what the test allows, floor &times; {LIMIT_FACTOR} + the history's resolution. "
        "<b>bound_ms</b>: what the configured timeouts would tolerate (the check's limit only where there is no "
        "floor). "
        "<b>VIP moved</b>: the holders sampled just before the fault &rarr; the last ones before the next fault "
        "(or the end of the trial).</p>"
    )


def _owner(name: str, trials: list[TrialView]) -> TrialView | None:
    """The trial a check belongs to: lab/trial.py names a trial's checks `<trial>: <check>`."""
    return next((t for t in trials if name.startswith(t.name + ": ")), None)


def _checks_html(checks: list[tuple[int, dict[str, Any]]], trials: list[TrialView]) -> str:
    """A table of (index in report.json, check); a trial's prefix links to its section."""
    rows = []
    for i, c in checks:
        name = str(c.get("name", "?"))
        ok = c.get("passed") is True
        owner = _owner(name, trials)
        shown = escape(name)
        if owner:
            shown = f'<a href="#{owner.anchor}">{escape(owner.name)}</a>: {escape(name[len(owner.name) + 2 :])}'
        result = '<span class="pass">pass</span>' if ok else '<span class="failed">FAIL</span>'
        cls = "" if ok else ' class="fail"'
        detail = escape(str(c.get("detail", "")))
        rows.append(f'<tr id="check-{i}"{cls}><td>{result}</td><td>{shown}</td><td>{detail}</td></tr>')
    return _table(["result", "check", "detail"], rows)


def _checks_summary(checks: list[dict[str, Any]]) -> str:
    if not checks:
        return '<p class="missing">no checks in this report: a run that checked nothing fails</p>'
    failed = [(i, c) for i, c in enumerate(checks) if c.get("passed") is not True]
    out = f"<p>checks: {len(checks) - len(failed)} passed, {len(failed)} failed"
    if not failed:
        return out + "</p>"
    links = "".join(f'<li><a href="#check-{i}">{escape(str(c.get("name", "?")))}</a></li>' for i, c in failed)
    return out + f':</p><ul class="failed">{links}</ul>'


def _png_img(png: bytes, alt: str) -> str:
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk: the page keeps its layout while decoding
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<img class="plot" alt="{escape(alt)}" width="{width}" height="{height}" src="data:image/png;base64,{data}">'
    )


def _history_html(t: TrialView, t0: float, t1: float) -> list[str]:
    """What the history holds, its faults, what it lacks, and the plot."""
    h = t.history
    processes = sorted({o.process for o in h})
    parts = [
        f"<p>{len(h)} records from {escape(', '.join(processes))}; read from {escape(t.source)}. "
        f"{escape(iso_utc(t0))} to {escape(_hms(t1))} ({t1 - t0:.1f} s); "
        "the plot's time axis counts seconds from the first record.</p>"
    ]
    if t.windows:
        items = []
        for w in t.windows:
            end = "healed at" if w.healed else "not healed: shaded to the end of the history at"
            offset = f"+{w.start - t0:.1f} s to +{w.end - t0:.1f} s"
            after = " (after the history ends)" if w.end > t1 else ""
            items.append(f"<li>{escape(w.label)}: {_hms(w.start)} ({offset}), {end} {_hms(w.end)}{after}</li>")
        parts.append("<p>faults (shaded in the plot):</p><ul>" + "".join(items) + "</ul>")
    else:
        parts.append('<p class="missing">no fault was recorded in this history (no nemesis op)</p>')
    missing = []
    if not t.spans:
        missing.append("client operations: none in this history")
    if not h.select(f="vip-holders"):
        missing.append("VIP holders: no vip-holders samples in this history")
    if not t.quorum_sampled:
        missing.append("quorum: not sampled by this run")
    parts += [f'<p class="missing">{escape(m)}</p>' for m in missing]
    if isinstance(t.plot, bytes):
        parts.append(_png_img(t.plot, f"{t.name}: client operations, latency, VIP holders and quorum over time"))
    elif isinstance(t.plot, str):
        parts.append(f'<p class="missing">plot failed: {escape(t.plot)}</p>')
    return parts


def _quorum_html(rows: list[dict[str, Any]]) -> str:
    """The trial's votequorum transitions (report.json `quorum`), nodes with the same change in one sample as one
    row: when (from the trial's first fault), who, what changed."""
    out = []
    for g in grouped(rows):
        at = next((r["at_ms"] for r in rows if r["time"] == g["time"]), None)
        what = describe_transition(g, g["time"]).split(": ", 1)[-1]
        cells = (_ms(at), escape(_hms(g["time"])), escape(", ".join(g["nodes"])), escape(what))
        out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return '<h3>quorum transitions</h3>' + _table(["ms from fault", "time", "nodes", "change"], out)


def _trial_html(
    t: TrialView, checks: list[tuple[int, dict[str, Any]]], trials: list[TrialView], quorum: list[dict[str, Any]]
) -> str:
    parts = [f'<section class="trial" id="{t.anchor}"><h2>trial: {escape(t.name)}</h2>']
    if t.t0 is None or t.t1 is None:
        parts.append(f'<p class="missing">no history recorded for this trial ({escape(t.source)})</p>')
    else:
        parts += _history_html(t, t.t0, t.t1)
    mine_q = [r for r in quorum if r.get("trial") == t.name and isinstance(r.get("changes"), dict)]
    if mine_q:
        parts.append(_quorum_html(mine_q))
    if t.events:
        names = ", ".join(f"{e.get('fault')} on {e.get('target')} ({e.get('service')})" for e in t.events)
        parts.append(f'<p>events: {escape(names)} (<a href="#events">table</a>)</p>')
    mine = [(i, c) for i, c in checks if _owner(str(c.get("name", "")), trials) is t]
    parts.append(_checks_html(mine, trials) if mine else '<p class="missing">no checks of this trial</p>')
    return "".join(parts) + "</section>"


def _header_html(report: dict[str, Any], run_dir: Path, trials: list[TrialView]) -> str:
    verdict = str(report.get("verdict", "unknown"))
    cls = "pass" if verdict == "pass" else "failed"
    rows = [
        ("scenario", report.get("scenario", "?")),
        ("provider", report.get("provider", "?")),
        ("profile", report.get("profile", "?")),
        ("started", report.get("started_at", "?")),
        ("duration", f"{report['duration_s']} s" if "duration_s" in report else "?"),
        ("run", run_dir.name),
        ("trials", len(trials)),
    ]
    meta = "".join(f"<tr><td>{escape(k)}</td><td>{escape(str(v))}</td></tr>" for k, v in rows)
    meta += f'<tr><td>verdict</td><td><span class="verdict {cls}">{escape(verdict)}</span></td></tr>'
    out = (
        f'<h1>halab report: {escape(str(report.get("scenario", run_dir.name)))}</h1><table class="meta">{meta}</table>'
    )
    for key, title in (("versions", "package versions"), ("timings_s", "phase timings (s)")):
        value = report.get(key)
        if isinstance(value, dict) and value:
            body = "".join(f"<tr><td>{escape(str(k))}</td><td>{escape(str(v))}</td></tr>" for k, v in value.items())
            out += f"<details><summary>{escape(title)}</summary><table>{body}</table></details>"
    return out


def render(run_dir: Path) -> str:
    """The page as a string (write_html writes it)."""
    report, problem = load_report(run_dir)
    trials_dir = run_dir / "trials"
    dirs = sorted(p for p in trials_dir.iterdir() if p.is_dir()) if trials_dir.is_dir() else []
    trials = sorted((load_trial(d) for d in dirs), key=lambda t: (t.t0 is None, t.t0 or 0.0, t.name))
    events = [e for e in report.get("events") or [] if isinstance(e, dict)]
    checks = [c for c in report.get("checks") or [] if isinstance(c, dict)]
    notes = [str(n) for n in report.get("notes") or []]
    where = _attribute(events, trials)
    drawable: list[TrialView] = []
    jobs: list[plots.Job] = []
    for t in trials:
        if t.t0 is not None and t.t1 is not None and (t.spans or t.lanes):
            drawable.append(t)
            jobs.append((t.spans, t.lanes, t.windows, t.t0, t.t1))
    for t, png in zip(drawable, plots.draw_all(jobs), strict=True):
        t.plot = png
    numbered = list(enumerate(checks))
    body = [_header_html(report, run_dir, trials), _checks_summary(checks)]
    if problem:
        body.append(f'<p class="missing">{escape(problem)}</p>')
    body += ["<h2>events</h2>", _measured_html(events), _events_html(events, where)]
    body.append("<h2>notes</h2>")
    items = "".join(f"<li>{escape(n)}</li>" for n in notes)
    body.append(f'<ul class="notes">{items}</ul>' if notes else '<p class="missing">no notes</p>')
    body.append("<h2>trials</h2>")
    if trials:
        body.append("<ul>" + "".join(f'<li><a href="#{t.anchor}">{escape(t.name)}</a></li>' for t in trials) + "</ul>")
    else:
        body.append(f'<p class="missing">no trials recorded ({escape(str(trials_dir))} has no trial directory)</p>')
    quorum = [r for r in report.get("quorum") or [] if isinstance(r, dict)]
    body += [_trial_html(t, numbered, trials, quorum) for t in trials]
    # the suite's own tests and run-wide checks (ordering from pacemaker.log, ...): no trial prefix
    rest = [(i, c) for i, c in numbered if _owner(str(c.get("name", "")), trials) is None]
    if rest:
        body += ['<h2 id="checks">checks not of one trial</h2>', _checks_html(rest, trials)]
    title = escape(f"halab {report.get('scenario', '')} {run_dir.name}".strip())
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
