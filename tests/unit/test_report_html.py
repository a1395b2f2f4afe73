"""report.html from recorded data: what the page says, what it plots, and that it needs nothing from a network."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import threading
from pathlib import Path

import pytest
from PIL import Image

from lab import report_plots as plots
from lab.history import History, Op
from lab.report_html import load_trial, render, write_html

pytestmark = pytest.mark.unit

DATA = Path(__file__).parent / "data" / "report"  # one recorded trial: kill -9 mysqld, never healed (README.md)
VIP = "192.168.42.101"


def recorded_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(DATA, run)
    return run


def images(page: str) -> list[Image.Image]:
    return [
        Image.open(io.BytesIO(base64.b64decode(b))) for b in re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    ]


def write_trial(run: Path, name: str, ops: list[Op]) -> Path:
    d = run / "trials" / name
    d.mkdir(parents=True)
    History(ops).dump(d / "history.jsonl")
    return d


def split_brain_ops(t0: float = 1000.0) -> list[Op]:
    """A VIP that moves to node2, is held by both for two samples, then by node2 alone; node1 loses quorum."""
    ops = [Op(t0 + 0.5, "nemesis", "info", "fault", {"fault": "freeze", "target": "node1"})]
    holders = [["node1"], ["node1"], ["node1", "node2"], ["node1", "node2"], ["node2"], ["node2"]]
    for i, nodes in enumerate(holders):
        t = t0 + i
        ops.append(Op(t, "observer", "info", "vip-holders", {VIP: nodes}))
        ops.append(Op(t, "observer", "info", "quorum", {"node1": {"quorate": i < 2}, "node2": {"quorate": True}}))
        ops.append(Op(t + 0.1, "mysql-writer", "invoke", "write", i, service="mysql"))
        ops.append(Op(t + 0.2, "mysql-writer", "ok" if i in (0, 5) else "fail", "write", i, service="mysql"))
    ops.append(Op(t0 + 4.5, "nemesis", "info", "heal", {"fault": "freeze", "target": "node1"}))
    return ops


def test_recorded_trial_merged_from_per_client_files(tmp_path: Path) -> None:
    run = recorded_run(tmp_path)
    path = write_html(run)
    assert path == run / "report.html"
    page = path.read_text()
    assert "no history.jsonl (the trial did not finish); merged from mysql-writer.jsonl" in page
    for text in ("active-passive", "netns", "guide", "pass", "kill-mysqld", "kill_service:mysql", "192.168.42.101"):
        assert text in page
    # the events table: both events, their downtime and bound, attributed to the trial by time
    events = page[page.index('<div id="events">') : page.index("</div>", page.index('<div id="events">'))]
    assert events.count("<tr>") == 3  # header + 2 events
    assert '<a href="#trial-kill-mysqld">kill-mysqld</a>' in events
    assert ">229<" in events and ">270000<" in events and "node2 &rarr; node2" in events
    assert "from the last acknowledged op before the first failure to the first acknowledged op after" in page
    assert "checks: 8 passed, 0 failed" in page
    # the fault was never healed (mysqld_safe restarted mysqld): shaded to the end of the history
    assert "kill_service:mysql node2: 10:52:31.155Z" in page and "not healed" in page
    assert "quorum: not sampled by this run" in page
    assert "back after 229 ms, restarted by mysqld_safe" in page  # a note
    [img] = images(page)
    assert img.format == "PNG" and img.width > 800 and img.height > 400


def test_the_page_fetches_nothing(tmp_path: Path) -> None:
    page = write_html(recorded_run(tmp_path)).read_text()
    assert "<script" not in page and "<link" not in page and "url(" not in page and "@import" not in page
    for ref in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert ref.startswith(("data:image/png;base64,", "#")), ref


def test_merged_history_is_preferred(tmp_path: Path) -> None:
    run = recorded_run(tmp_path)
    trial = run / "trials" / "kill-mysqld"
    h = History.load(*trial.glob("*.jsonl"))
    History([o for o in h if not o.process.startswith("probe-")]).dump(trial / "history.jsonl")
    view = load_trial(trial)
    assert view.source == "history.jsonl"
    assert {o.process for o in view.history} == {o.process for o in h} - {"probe-mysql", "probe-rabbitmq"}


def test_a_heal_recorded_after_the_merged_history_still_ends_its_window(tmp_path: Path) -> None:
    run = tmp_path / "run"
    ops = split_brain_ops()[:-1]  # the heal comes after history.jsonl was written, as a test's teardown heals
    trial = write_trial(run, "freeze", ops)
    History([Op(1010.0, "nemesis", "info", "heal", {"fault": "freeze", "target": "node1"})]).dump(
        trial / "nemesis.jsonl"
    )
    [w] = load_trial(trial).windows
    assert w.healed and w.end == 1010.0
    assert "(after the history ends)" in render(run)


def test_no_report_json_and_no_trials(tmp_path: Path) -> None:
    page = write_html(tmp_path / "empty").read_text()
    assert "report.json is missing" in page
    assert "no trials recorded" in page
    assert "no events in this report" in page and "no checks in this report" in page and "no notes" in page


def test_report_without_trials_still_lists_events_and_checks(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(DATA / "report.json", run / "report.json")
    page = render(run)
    assert "no trials recorded" in page
    assert page.count("kill_service:mysql") == 2  # both events, with no trial to link to
    assert "checks not of one trial" in page and "kill-mysqld: lost-writes:mysql" in page
    assert not images(page)


def test_trial_without_history_and_unreadable_report(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "trials" / "never-started").mkdir(parents=True)
    (run / "report.json").write_text("{not json")
    page = render(run)
    assert "report.json could not be read" in page
    assert "no history recorded for this trial" in page and "nothing: no *.jsonl in the trial directory" in page


def test_history_without_observer_samples_plots_the_clients(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_trial(run, "clients-only", [o for o in split_brain_ops() if o.process != "observer"])
    page = render(run)
    assert "VIP holders: no vip-holders samples in this history" in page
    assert "quorum: not sampled by this run" in page
    assert len(images(page)) == 1


def test_quorum_samples_and_a_double_vip_are_drawn(tmp_path: Path) -> None:
    h = History(split_brain_ops()).sorted()
    lanes = {lane.label: lane for lane in plots.holder_lanes(h) + plots.quorum_lanes(h)}
    assert set(lanes) == {f"node1 · VIP {VIP}", f"node2 · VIP {VIP}", "node1 · quorum", "node2 · quorum"}
    assert lanes[f"node1 · VIP {VIP}"].segments == [(1000.0, 1002.0, "held"), (1002.0, 1004.0, "shared")]
    assert lanes[f"node2 · VIP {VIP}"].segments == [(1002.0, 1004.0, "shared"), (1004.0, 1005.0, "held")]
    assert lanes["node1 · quorum"].segments == [(1000.0, 1002.0, "quorate"), (1002.0, 1005.0, "inquorate")]
    run = tmp_path / "run"
    write_trial(run, "split", split_brain_ops())
    page = render(run)
    assert "quorum: not sampled" not in page and "no vip-holders samples" not in page
    [img] = images(page)
    colours = {c for _, c in img.convert("RGB").getcolors(1 << 20)}
    for hex_ in (plots.STATE_COLOURS["shared"], plots.STATE_COLOURS["quorate"], plots.TYPE_COLOURS["fail"]):
        rgb = tuple(int(hex_[i : i + 2], 16) for i in (1, 3, 5))
        assert any(max(abs(a - b) for a, b in zip(c, rgb, strict=True)) <= 3 for c in colours), hex_  # 256-colour PNG


def test_quorum_samples_may_be_plain_booleans() -> None:
    h = History(
        [Op(1.0, "observer", "info", "quorum", {"n1": True}), Op(2.0, "observer", "info", "quorum", {"n1": False})]
    )
    [lane] = plots.quorum_lanes(h)
    assert lane.segments == [(1.0, 2.0, "quorate"), (2.0, 2.0, "inquorate")]


def test_fault_windows_pair_heals_with_their_faults() -> None:
    cut0 = {"fault": "cut", "target": "node1", "network": "ring0"}
    cut1 = {"fault": "cut", "target": "node1", "network": "ring1"}
    kill = {"fault": "kill_service", "service": "mysql", "target": "node2"}
    h = History(
        [
            Op(1.0, "nemesis", "info", "fault", cut0),
            Op(1.1, "nemesis", "info", "fault", cut1),
            Op(2.0, "nemesis", "info", "heal", cut1),  # the second first: matched by value, not order
            Op(3.0, "nemesis", "info", "heal", cut0),
            Op(4.0, "nemesis", "info", "fault", kill),
            Op(5.0, "nemesis", "info", "fault", {"fault": "freeze", "target": "node2"}),
            Op(5.5, "nemesis", "info", "fault-failed", {"fault": "freeze", "target": "node2", "error": "boom"}),
            Op(6.0, "nemesis", "info", "heal", {"fault": "crash", "target": "node9"}),  # nothing open: ignored
        ]
    )
    assert plots.fault_windows(h, end=9.0) == [
        plots.Window("cut node1 ring0", 1.0, 3.0, True),
        plots.Window("cut node1 ring1", 1.1, 2.0, True),
        plots.Window("kill_service:mysql node2", 4.0, 9.0, False),
        plots.Window("freeze node2 (failed to apply)", 5.0, 5.5, True),
    ]


def test_client_spans_pair_invokes_with_completions() -> None:
    h = History(
        [
            Op(1.0, "w", "invoke", "write", 1, service="mysql"),
            Op(1.2, "w", "ok", "write", 1, service="mysql"),
            Op(1.3, "c", "ok", "consume", 7, service="rabbitmq"),  # a delivery: no invoke
            Op(1.4, "w", "invoke", "write", 2, service="mysql"),
            Op(2.4, "w", "info", "write", 2, service="mysql", error="timed out"),
            Op(2.5, "w", "invoke", "write", 3, service="mysql"),  # never came back
            Op(2.6, "observer", "info", "vip-holders", {VIP: ["node1"]}),
        ]
    )
    assert plots.client_spans(h, end=3.0) == [
        plots.Span("w", "write", 1.0, 1.2, "ok"),
        plots.Span("c", "consume", 1.3, 1.3, "ok", has_invoke=False),
        plots.Span("w", "write", 1.4, 2.4, "info"),
        plots.Span("w", "write", 2.5, 3.0, plots.PENDING),
    ]


def test_text_is_escaped(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_trial(run, "a<b>&c", split_brain_ops())
    report = {"scenario": "<i>x</i>", "notes": ["<script>alert(1)</script>"], "events": [], "checks": []}
    (run / "report.json").write_text(json.dumps(report))
    page = render(run)
    assert "<script>" not in page and "<i>x</i>" not in page and "a<b>&c" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "trial: a&lt;b&gt;&amp;c" in page
    assert 'id="trial-a-b--c"' in page


def test_a_failed_plot_is_said_and_the_page_still_renders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> bytes:
        raise RuntimeError("no canvas")

    monkeypatch.setattr(plots, "trial_png", broken)
    page = render(recorded_run(tmp_path))
    assert "plot failed: RuntimeError(&#x27;no canvas&#x27;)" in page
    assert "all 40 acknowledged writes present" in page  # the trial's checks, after the plot


def test_forked_drawing_matches_drawing_here(monkeypatch: pytest.MonkeyPatch) -> None:
    h = History(split_brain_ops()).sorted()
    t0, t1 = h.ops[0].time, h.ops[-1].time
    job = (plots.client_spans(h, t1), plots.holder_lanes(h), plots.fault_windows(h, t1), t0, t1)
    pools: list[object] = []
    real = plots.ProcessPoolExecutor
    monkeypatch.setattr(plots, "ProcessPoolExecutor", lambda *a, **k: pools.append(a) or real(*a, **k))
    parallel = plots.draw_all([job, job])
    assert len(pools) == (1 if (os.cpu_count() or 1) > 1 else 0)
    monkeypatch.setattr(plots, "MAX_WORKERS", 1)
    assert parallel == plots.draw_all([job, job])
    assert len(pools) <= 1 and all(isinstance(png, bytes) for png in parallel)
    # with another thread alive, fork is not safe: drawn here, same result
    monkeypatch.undo()
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert plots.draw_all([job, job]) == parallel
    finally:
        stop.set()
        other.join()


def test_a_trials_quorum_transitions_are_tabled_in_its_section(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_trial(run, "split", split_brain_ops())
    change = {"quorate": [True, False], "members": [["node1", "node2"], ["node1"]]}
    rows = [
        {"trial": "split", "node": n, "time": 1002.0, "at_ms": 1500, "changes": change} for n in ("node1", "node2")
    ]
    rows.append({"trial": "other", "node": "node1", "time": 1003.0, "at_ms": 9, "changes": change})
    (run / "report.json").write_text(json.dumps({"scenario": "quorum", "quorum": rows}))
    page = render(run)
    assert page.count("<h3>quorum transitions</h3>") == 1  # "other" has no trial section: not drawn
    assert "<td>1500</td>" in page and "<td>node1, node2</td>" in page
    assert "<td>quorate yes -&gt; no, members 2 -&gt; 1</td>" in page
