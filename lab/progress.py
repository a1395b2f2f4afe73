"""Progress people can see: the long steps (box build, `vagrant up`, provisioning, each trial, teardown) say what
they are doing and for how long.

    with progress.step("provision active-passive"):
        progress.note("corosync + pacemaker on node1, node2")   # a sub-step: from the playbooks' role boundaries
        ...

On a terminal (stderr a tty, not under pytest): one rich spinner line with the step, its sub-step and the elapsed
time, redrawn in place; each finished sub-step stays above it with its duration, and the step ends in one line
with its total. Anywhere else (CI logs, pytest's capture, `| cat`): plain lines, one when the step starts, one per
sub-step (with the time into the step) and one at the end, never a spinner frame:

    [halab] provision active-passive …
    [halab] provision active-passive: corosync + pacemaker on node1, node2 … 12.3 s
    [halab] provision active-passive: done in 1 min 24 s        (or: failed after 12.3 s)

HALAB_PROGRESS=live|plain|off overrides the choice. Everything goes to stderr, so stdout stays what a command
prints (`halab provision LAB | cat` keeps the status on stdout). A note outside any step shows nothing: code that
reports progress also runs where nobody watches (bench scripts, unit tests).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

Clock = Callable[[], float]
MODES = ("auto", "live", "plain", "off")
PREFIX = "[halab]"
# rich's "dots" spinner (80 ms a frame) and an ASCII one for terminals that cannot show it
FRAMES_UTF8, FRAMES_ASCII, FRAME_S = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏", "|/-\\", 0.08
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|[\x00-\x1f\x7f]")


def format_elapsed(seconds: float) -> str:
    """12.3 s under a minute, then 4 min 05 s, then 1 h 02 min: a box build or a TCG `vagrant up` takes minutes."""
    if round(seconds, 1) < 60:
        return f"{max(seconds, 0.0):.1f} s"
    total = round(seconds)
    if total < 3600:
        return f"{total // 60} min {total % 60:02d} s"
    return f"{total // 3600} h {total % 3600 // 60:02d} min"


def _isatty(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def _utf8(stream: object) -> bool:
    return str(getattr(stream, "encoding", None) or "").lower().replace("-", "") == "utf8"


def choose_mode(stream: object, env: Mapping[str, str] | None = None) -> str:
    """live on a terminal, plain elsewhere; plain under pytest even with `-s` on a terminal (a spinner would redraw
    over the test output), and on TERM=dumb. HALAB_PROGRESS overrides (an unknown value means auto)."""
    env = os.environ if env is None else env
    wanted = env.get("HALAB_PROGRESS", "").strip().lower()
    if wanted in ("live", "plain", "off"):
        return wanted
    if "PYTEST_CURRENT_TEST" in env or env.get("TERM") == "dumb":
        return "plain"
    return "live" if _isatty(stream) else "plain"


def tail_line(path: Path, since: int = 0, max_bytes: int = 4096) -> str:
    """The last non-empty line written to a log file after byte `since`, without control characters; "" when there
    is none yet. Cheap enough to call at every redraw."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(f.tell() - max_bytes, since, 0))
            data = f.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [_CONTROL.sub("", ln).strip() for ln in data.splitlines()]
    return next((ln for ln in reversed(lines) if ln), "")


def log_tail(path: Path) -> Callable[[], str]:
    """A sub-step's `detail`: the newest line another process (`vagrant up`) appends to `path` from now on, so the
    spinner never shows the last run's end of an appended log."""
    try:
        since = path.stat().st_size
    except OSError:
        since = 0
    return lambda: tail_line(path, since)


class Step:
    """A running step: what `Reporter.step` yields and `Reporter.begin` returns. `end` it exactly once (a second
    call does nothing); a nested step is a sub-step of the outer one and ends silently."""

    def __init__(self, reporter: Reporter, title: str, outer: Step | None = None) -> None:
        self.reporter, self.title, self.outer = reporter, title, outer
        self.t0 = reporter.clock()
        self.sub: str | None = None
        self.sub_t0 = self.t0
        self.detail: Callable[[], str] | None = None
        self.error: type[BaseException] | None = None
        self.ended = False

    @property
    def elapsed(self) -> float:
        return self.reporter.clock() - self.t0

    def note(self, text: str, detail: Callable[[], str] | None = None) -> None:
        self.reporter.note(text, detail)

    def fail(self, error: type[BaseException] | BaseException = Exception) -> None:
        """Mark the step failed; its end says so whatever `end` is told (a half-started trial)."""
        self.error = self.error or (error if isinstance(error, type) else type(error))

    def end(self, error: type[BaseException] | BaseException | None = None) -> None:
        if error is not None:
            self.fail(error)
        self.reporter._end(self)

    @property
    def outcome(self) -> str:
        if self.error is None:
            return "done in"
        return "interrupted after" if issubclass(self.error, KeyboardInterrupt) else "failed after"


class Reporter:
    """Shows one step at a time on `stream` (default: sys.stderr as it is when the step starts, since pytest swaps
    it per test). `mode` None chooses per step (choose_mode); `clock` is injectable for tests."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        mode: str | None = None,
        clock: Clock = time.monotonic,
        refresh_per_second: float = 4,
        auto_refresh: bool = True,
    ) -> None:
        if mode is not None and mode not in MODES:
            raise ValueError(f"progress mode {mode!r}: use one of {', '.join(MODES)}")
        self._stream, self._mode, self.clock = stream, mode, clock
        self._refresh, self._auto_refresh = refresh_per_second, auto_refresh
        # notes come from the main thread, the spinner redraws from rich's; render never takes this lock, or
        # Live.stop (joining the redraw thread) under it would deadlock
        self._lock = threading.RLock()
        self.top: Step | None = None
        self.mode = "off"
        self._out: TextIO = sys.stderr
        self._console: Console | None = None
        self._live: Live | None = None

    # ------------------------------------------------------------------ the API
    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[Step]:
        s = self.begin(title)
        try:
            yield s
        except BaseException as exc:
            s.end(exc)
            raise
        s.end()

    def begin(self, title: str) -> Step:
        with self._lock:
            if self.top is not None and not self.top.ended:
                self.note(title)  # e.g. a box build inside another step: a sub-step of it
                return Step(self, title, outer=self.top)
            self._out = self._stream or sys.stderr
            self.mode = choose_mode(self._out) if self._mode in (None, "auto") else str(self._mode)
            self.top = s = Step(self, title)
            if self.mode == "plain":
                self._line(f"{title} {self._ellipsis}")
            elif self.mode == "live":
                self._start_live()
            return s

    def note(self, text: str, detail: Callable[[], str] | None = None) -> None:
        """The running step's sub-step is now `text`; `detail` (live mode only) is asked at every redraw for a
        line of what that sub-step's process is doing, e.g. tail_line of its log."""
        with self._lock:
            s = self.top
            if s is None or s.ended:
                return
            now = self.clock()
            if self.mode == "live" and s.sub is not None:
                self._print_done_sub(s, now)
            s.sub, s.sub_t0, s.detail = text, now, detail
            if self.mode == "plain":
                self._line(f"{s.title}: {text} {self._ellipsis} {format_elapsed(now - s.t0)}")
            elif self._live is not None:
                self._live.refresh()

    # ------------------------------------------------------------------ internals
    def _end(self, s: Step) -> None:
        with self._lock:
            if s.ended:
                return
            s.ended = True
            if s.outer is not None:  # the outer step shows the failure, when it propagates
                return
            total = format_elapsed(s.elapsed)
            if self.mode == "plain":
                self._line(f"{s.title}: {s.outcome} {total}")
            elif self.mode == "live":
                self._stop_live(s, total)

    @property
    def _ellipsis(self) -> str:
        return "…" if _utf8(self._out) else "..."

    def _line(self, text: str) -> None:
        try:
            self._out.write(f"{PREFIX} {text}\n")
            self._out.flush()
        except (OSError, ValueError):  # a closed or gone stream (a finished test's capture): progress never fails a run
            pass

    def _start_live(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self._console = Console(file=self._out, highlight=False, markup=False, emoji=False)
        # stdout printed during a step (click.echo, a schedule's lines) goes above the spinner, but only when stdout
        # is this terminal too: `halab provision LAB | cat` must keep its stdout in the pipe
        self._live = Live(
            console=self._console,
            get_renderable=self.render,
            transient=True,
            auto_refresh=self._auto_refresh,
            refresh_per_second=self._refresh,
            redirect_stdout=_isatty(sys.stdout),
            redirect_stderr=_isatty(sys.stderr),
        )
        self._live.start(refresh=True)

    def _stop_live(self, s: Step, total: str) -> None:
        from rich.text import Text

        assert self._console is not None and self._live is not None
        if s.sub is not None:
            self._print_done_sub(s, self.clock())
        self._live.stop()
        ok = s.error is None
        mark = ("✓" if ok else "✗") if self._utf8_console else ("ok" if ok else "FAILED")
        self._console.print(
            Text.assemble((f"{mark} ", "bold green" if ok else "bold red"), (s.title, "bold"), f" {s.outcome} {total}")
        )
        self._live = self._console = None

    @property
    def _utf8_console(self) -> bool:
        return self._console is not None and self._console.encoding.lower().replace("-", "") == "utf8"

    def _print_done_sub(self, s: Step, now: float) -> None:
        from rich.text import Text

        if self._live is not None:
            self._live.console.print(Text(f"  {s.sub}  {format_elapsed(now - s.sub_t0)}", style="dim"))

    def render(self) -> Text:
        """The live line as it is now (what rich redraws, refresh_per_second times a second)."""
        from rich.text import Text

        s = self.top
        if s is None:
            return Text("")
        now = self.clock()
        frames = FRAMES_UTF8 if self._utf8_console else FRAMES_ASCII
        text = Text.assemble(
            (frames[int((now - s.t0) / FRAME_S) % len(frames)] + " ", "cyan"),
            (s.title, "bold"),
            no_wrap=True,
            overflow="ellipsis",
        )
        # the elapsed time before the sub-step: a line too wide for the terminal loses its end, never the time
        text.append(f"  {format_elapsed(now - s.t0)}", style="cyan")
        if s.sub:
            text.append(f"  {s.sub}")
        try:
            detail = s.detail() if s.detail else ""
        except Exception:  # rich's redraw thread must not die of a sub-step's detail
            detail = ""
        if detail:
            text.append(f"  {detail}", style="dim")
        return text


_current = Reporter()


def reporter() -> Reporter:
    return _current


def use(r: Reporter) -> Reporter:
    """Make `r` the module's reporter (tests); returns the one it replaces."""
    global _current
    previous, _current = _current, r
    return previous


def step(title: str) -> contextlib.AbstractContextManager[Step]:
    """A step shown with its elapsed time until the block ends; says failed (or interrupted) when it raises."""
    return _current.step(title)


def begin(title: str) -> Step:
    """A step that ends where a context manager cannot span it (Trial.start ... Trial.__exit__): call `end()`."""
    return _current.begin(title)


def note(text: str, detail: Callable[[], str] | None = None) -> None:
    """The running step's sub-step (a few per step, at role boundaries); nothing outside a step."""
    _current.note(text, detail)
