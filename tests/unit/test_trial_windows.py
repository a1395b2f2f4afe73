"""Events of a trial with several faults: each outage goes to the fault (or heal) after which it began."""

from __future__ import annotations

import pytest

from lab.checks.availability import outage
from lab.faults import make
from lab.history import History, Op
from lab.trial import Trial

pytestmark = pytest.mark.unit


def writes(*completions: tuple[float, str]) -> History:
    ops = []
    for t, type_ in completions:
        ops += [Op(t - 0.01, "w", "invoke", "write", service="mysql"), Op(t, "w", type_, "write", service="mysql")]
    return History(ops)


def test_each_outage_is_attributed_to_the_fault_it_followed() -> None:
    # fault A at 10: failures 11-12, back at 13; fault B at 20: failures 21-24, back at 25
    h = writes((9, "ok"), (10.5, "ok"), (11, "fail"), (12, "fail"), (13, "ok"), (19, "ok"), (21, "fail"),
               (24, "info"), (25, "ok"))  # fmt: skip
    first = outage(h, "mysql", since=10, onset_within=(0, 20))
    second = outage(h, "mysql", since=20, onset_within=(20, None))
    assert (first.start, first.end, first.downtime_ms) == (10.5, 13, 2500)
    assert (second.start, second.end, second.downtime_ms) == (19, 25, 6000)
    # without windows the longest wins: the first fault would be charged with the second's outage
    assert outage(h, "mysql", since=10).downtime_ms == 6000


def test_an_outage_that_began_before_the_next_fault_stays_with_the_first() -> None:
    h = writes((9, "ok"), (11, "fail"), (21, "fail"), (22, "ok"))
    assert outage(h, "mysql", since=20, onset_within=(20, None)).downtime_ms == 0
    assert outage(h, "mysql", since=10, onset_within=(0, 20)).downtime_ms == 13000


def test_windows_split_at_faults_and_heals() -> None:
    t = Trial.__new__(Trial)  # only the logs matter here
    crash, cut = make("crash", "node1"), make("cut", "node2", network="ring1")
    t.fault_log, t.heal_log = [(crash, 10.0), (cut, 30.0)], [(crash, 20.0), (cut, 40.0)]
    assert t.windows(10.0, until=35.0) == [
        ("crash", "node1", 10.0, 20.0),
        ("heal:crash", "node1", 20.0, 30.0),
        ("cut", "node2", 30.0, None),  # the cut's heal came after the history ended: not a window
    ]
    t.fault_log, t.heal_log = [], []
    assert t.windows(5.0, until=9.0) == [("none", "-", 5.0, None)]


def test_a_gap_outage_goes_to_the_fault_it_followed() -> None:
    """No op failed (requests hung): the gap is dated from when it exceeded the history's resolution."""
    h = writes(*[(t / 10, "ok") for t in range(0, 100)], (13.0, "ok"), (14.0, "ok"))  # acks to 9.9, then 13.0
    a = outage(h, "mysql", since=5, max_gap_s=0.5, onset_within=(0, 10))
    b = outage(h, "mysql", since=10, max_gap_s=0.5, onset_within=(10, None))
    assert (a.downtime_ms, b.downtime_ms) == (0, 3100)


def test_a_request_hung_by_the_fault_that_fails_after_the_heal_is_the_faults() -> None:
    """Fault at 10, heal at 11.9: the write sent at 10.05 hangs and fails at its 2 s timeout, after the heal."""
    h = History(
        [Op(9.95, "w", "invoke", "write", service="api"), Op(10.0, "w", "ok", "write", service="api"),
         Op(10.05, "w", "invoke", "write", service="api"), Op(12.05, "w", "info", "write", service="api"),
         Op(12.1, "w", "invoke", "write", service="api"), Op(12.15, "w", "ok", "write", service="api")]
    )  # fmt: skip
    fault = outage(h, "api", since=10, onset_within=(0, 11.9))
    assert (fault.downtime_ms, fault.onset) == (2150, 10.05)
    assert outage(h, "api", since=11.9, onset_within=(11.9, None)).downtime_ms == 0  # not the heal's
