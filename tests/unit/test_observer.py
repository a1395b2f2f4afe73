"""The observer must admit when it was blind: a checker that saw no sample cannot have seen a double VIP."""

from types import SimpleNamespace

import pytest

from lab.history import History, Op
from lab.observer import MAX_GAP_PERIODS, Observer

pytestmark = pytest.mark.unit


def observer(tmp_path) -> Observer:
    return Observer(SimpleNamespace(), ["192.168.42.101"], [], tmp_path, period_s=0.1)


def samples(*times: float) -> list[Op]:
    return [Op(t, "observer", "info", "vip-holders", {"192.168.42.101": ["node1"]}) for t in times]


def test_regular_samples_cover_the_trial(tmp_path) -> None:
    ok, detail = observer(tmp_path).coverage(History(samples(*[10 + i * 0.1 for i in range(50)])), since=11)
    assert ok, detail


def test_a_long_gap_after_the_fault_fails(tmp_path) -> None:
    gap = MAX_GAP_PERIODS * 0.1 + 1
    ok, detail = observer(tmp_path).coverage(History(samples(10, 10.1, 10.2, 10.2 + gap, 10.3 + gap)), since=10.15)
    assert not ok and "longest gap" in detail


def test_an_observer_error_fails(tmp_path) -> None:
    ops = samples(10, 10.1, 10.2, 10.3) + [Op(10.25, "observer", "info", "observer-error", None, error="EINVAL")]
    ok, detail = observer(tmp_path).coverage(History(sorted(ops, key=lambda o: o.time)), since=10)
    assert not ok and "EINVAL" in detail


def test_no_sample_after_the_fault_fails(tmp_path) -> None:
    ok, _ = observer(tmp_path).coverage(History(samples(10, 10.1)), since=20)
    assert not ok
