"""lab/progress.py: a spinner line on a terminal, few plain lines elsewhere, elapsed times from an injected clock."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import progress
from lab.progress import Reporter, choose_mode, format_elapsed, log_tail, tail_line

pytestmark = pytest.mark.unit


class Stream(io.StringIO):
    """A stream that says whether it is a terminal, with a UTF-8 encoding like sys.stderr's."""

    def __init__(self, tty: bool, encoding: str = "utf-8") -> None:
        super().__init__()
        self.tty, self._encoding = tty, encoding

    def isatty(self) -> bool:
        return self.tty

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._encoding


def visible(text: str) -> str:
    """What a terminal shows of rich's output, colours and cursor moves aside."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0.0 s"),
        (12.34, "12.3 s"),
        (59.94, "59.9 s"),
        (59.96, "1 min 00 s"),  # never "60.0 s"
        (125.4, "2 min 05 s"),
        (3599, "59 min 59 s"),
        (3725, "1 h 02 min"),
        (-0.01, "0.0 s"),  # a clock read twice a hair apart in the other order
    ],
)
def test_elapsed_formatting(seconds: float, shown: str) -> None:
    assert format_elapsed(seconds) == shown


def test_mode_is_live_on_a_terminal_plain_elsewhere_and_under_pytest() -> None:
    assert choose_mode(Stream(tty=True), {}) == "live"
    assert choose_mode(Stream(tty=False), {}) == "plain"
    assert choose_mode(Stream(tty=True), {"PYTEST_CURRENT_TEST": "t.py::x (call)"}) == "plain"
    assert choose_mode(Stream(tty=True), {"TERM": "dumb"}) == "plain"
    assert choose_mode(Stream(tty=False), {"HALAB_PROGRESS": "live"}) == "live"
    assert choose_mode(Stream(tty=True), {"HALAB_PROGRESS": "off"}) == "off"
    assert choose_mode(Stream(tty=True), {"HALAB_PROGRESS": "bogus"}) == "live"  # unknown: auto
    assert choose_mode(object(), {}) == "plain"  # no isatty at all


def test_a_terminal_under_pytest_gets_plain_lines(clock: Clock) -> None:
    out = Stream(tty=True)  # pytest -s on a terminal: this test runs with PYTEST_CURRENT_TEST set
    with Reporter(out, clock=clock).step("up lab (netns)"):
        pass
    assert out.getvalue() == "[halab] up lab (netns) …\n[halab] up lab (netns): done in 0.0 s\n"


def test_plain_mode_is_one_line_per_sub_step_and_one_with_the_total(clock: Clock) -> None:
    out = Stream(tty=False)
    r = Reporter(out, mode="plain", clock=clock)
    with r.step("provision active-passive"):
        clock.now += 0.4
        r.note("corosync on node1")
        clock.now += 11.9
        r.note("g_mysql starting")
        clock.now += 72.0
    assert out.getvalue().splitlines() == [
        "[halab] provision active-passive …",
        "[halab] provision active-passive: corosync on node1 … 0.4 s",
        "[halab] provision active-passive: g_mysql starting … 12.3 s",
        "[halab] provision active-passive: done in 1 min 24 s",
    ]
    assert "\x1b" not in out.getvalue() and "\r" not in out.getvalue()  # never a spinner frame


def test_plain_mode_without_utf8_says_three_dots(clock: Clock) -> None:
    out = Stream(tty=False, encoding="ascii")
    with Reporter(out, mode="plain", clock=clock).step("down lab (netns)"):
        pass
    assert out.getvalue().splitlines()[0] == "[halab] down lab (netns) ..."


def test_a_failed_step_says_failed_after_and_the_error_goes_on(clock: Clock) -> None:
    out = Stream(tty=False)
    r = Reporter(out, mode="plain", clock=clock)
    with pytest.raises(RuntimeError, match="boom"), r.step("up lab (libvirt)"):
        r.note("vagrant up: 2 VMs")
        clock.now += 2.5
        raise RuntimeError("boom")
    assert out.getvalue().splitlines()[-1] == "[halab] up lab (libvirt): failed after 2.5 s"
    with pytest.raises(KeyboardInterrupt), r.step("trial crash-active"):
        raise KeyboardInterrupt
    assert out.getvalue().splitlines()[-1] == "[halab] trial crash-active: interrupted after 0.0 s"


def test_begin_and_end_span_what_a_with_block_cannot(clock: Clock) -> None:
    out = Stream(tty=False)
    r = Reporter(out, mode="plain", clock=clock)
    s = r.begin("trial crash-active")
    s.fail(ValueError("settle timed out"))  # Trial.start failed; __enter__ calls __exit__() without it
    clock.now += 3
    s.end(None)
    s.end(None)  # a second end shows nothing
    assert out.getvalue().splitlines() == [
        "[halab] trial crash-active …",
        "[halab] trial crash-active: failed after 3.0 s",
    ]


def test_notes_outside_a_step_show_nothing_and_a_nested_step_is_a_sub_step(clock: Clock) -> None:
    out = Stream(tty=False)
    r = Reporter(out, mode="plain", clock=clock)
    r.note("nobody watches")
    with r.step("up lab (libvirt)"):
        clock.now += 1
        with r.step("box build halab/debian12"):
            clock.now += 1
    r.note("after the step")
    assert out.getvalue().splitlines() == [
        "[halab] up lab (libvirt) …",
        "[halab] up lab (libvirt): box build halab/debian12 … 1.0 s",
        "[halab] up lab (libvirt): done in 2.0 s",
    ]


def test_off_mode_shows_nothing(clock: Clock) -> None:
    out = Stream(tty=True)
    r = Reporter(out, mode="off", clock=clock)
    with r.step("up lab (netns)"):
        r.note("x")
    assert out.getvalue() == ""


def test_the_module_level_api_uses_the_current_reporter(clock: Clock) -> None:
    out = Stream(tty=False)
    previous = progress.use(Reporter(out, mode="plain", clock=clock))
    try:
        with progress.step("down lab (netns)"):
            progress.note("namespaces")
    finally:
        progress.use(previous)
    assert out.getvalue().splitlines()[1] == "[halab] down lab (netns): namespaces … 0.0 s"


@pytest.fixture
def live(clock: Clock) -> Iterator[tuple[Reporter, Stream]]:
    out = Stream(tty=True)
    # no redraw thread: what is drawn is then only what start, each note and the end draw
    yield Reporter(out, mode="live", clock=clock, auto_refresh=False), out


def test_live_line_has_spinner_step_sub_step_elapsed_and_detail(live: tuple[Reporter, Stream], clock: Clock) -> None:
    r, _ = live
    s = r.begin("up lab (libvirt)")
    try:
        assert r.render().plain == "⠋ up lab (libvirt)  0.0 s"
        clock.now += 12.3  # 153 frames of 80 ms: frame 3
        r.note("vagrant up: 2 VMs", detail=lambda: "==> node1: Creating domain")
        assert r.render().plain == "⠸ up lab (libvirt)  12.3 s  vagrant up: 2 VMs  ==> node1: Creating domain"
        r.note("preparing node1", detail=lambda: 1 / 0)  # type: ignore[arg-type,return-value]
        assert r.render().plain.endswith("12.3 s  preparing node1")  # a failing detail is left out
    finally:
        s.end()


def test_live_mode_keeps_finished_sub_steps_and_ends_in_one_line(live: tuple[Reporter, Stream], clock: Clock) -> None:
    r, out = live
    with r.step("provision ap (guide)"):
        r.note("corosync + pacemaker on node1, node2")
        clock.now += 2
        r.note("g_mysql starting")
        clock.now += 3
    assert "\x1b[?25l" in out.getvalue()  # the cursor hidden while the spinner line is redrawn in place
    text = visible(out.getvalue())
    assert "  corosync + pacemaker on node1, node2  2.0 s" in text
    assert "  g_mysql starting  3.0 s" in text
    assert text.rstrip().endswith("✓ provision ap (guide) done in 5.0 s")


def test_live_mode_says_failed(live: tuple[Reporter, Stream], clock: Clock) -> None:
    r, out = live
    with pytest.raises(OSError), r.step("box build halab/debian12"):
        clock.now += 61
        raise OSError("disk full")
    assert visible(out.getvalue()).rstrip().endswith("✗ box build halab/debian12 failed after 1 min 01 s")


def test_live_mode_without_utf8_uses_ascii(clock: Clock) -> None:
    out = Stream(tty=True, encoding="ascii")
    r = Reporter(out, mode="live", clock=clock, auto_refresh=False)
    with r.step("down lab (netns)"):
        assert r.render().plain == "| down lab (netns)  0.0 s"
    assert visible(out.getvalue()).rstrip().endswith("ok down lab (netns) done in 0.0 s")


def test_log_tail_shows_only_what_is_appended_from_now_on(tmp_path: Path) -> None:
    log = tmp_path / "vagrant.log"
    assert tail_line(log) == ""  # not written yet
    log.write_text("==> node1: Domain is destroyed\n")
    detail = log_tail(log)
    assert detail() == ""  # the last run's end of an appended log is not this sub-step's
    with log.open("a") as f:
        f.write("Bringing machine 'node1' up with 'libvirt' provider...\n\x1b[0m==> node1: Creating domain\r\n\n")
    assert detail() == "==> node1: Creating domain"


def test_a_line_too_wide_for_the_terminal_loses_its_end_never_the_elapsed_time(
    live: tuple[Reporter, Stream], clock: Clock
) -> None:
    from rich.console import Console

    r, _ = live
    with r.step("provision active-passive (guide)"):
        clock.now += 12.3
        r.note("crm configure, then g_mysql, g_rabbitmq starting on node1 and node2")
        narrow = Console(file=io.StringIO(), width=50)
        lines = narrow.render_lines(r.render(), narrow.options, pad=False)  # what rich's Live draws
    assert ["".join(seg.text for seg in line) for line in lines] == [
        "⠸ provision active-passive (guide)  12.3 s  crm c…"
    ]


def test_a_closed_stream_never_fails_the_step(clock: Clock) -> None:
    out = Stream(tty=False)
    r = Reporter(out, mode="plain", clock=clock)
    with r.step("down lab (netns)"):
        out.close()  # e.g. the capture of the test that began the step is gone
        r.note("namespaces")
