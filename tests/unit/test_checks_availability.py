from __future__ import annotations

import pytest

from lab.checks import MEASURED_BY, Outage, downtime_check, outage
from lab.checks.availability import outages, total_downtime_ms
from lab.history import History, Op

pytestmark = pytest.mark.unit


def w(t: float, type: str, value: int = 0, service: str = "mysql", process: str = "mysql-writer") -> Op:
    return Op(t, process, type, "write", value, service)


def writes(*completions: tuple[float, str]) -> History:
    """A single writer: each completion is preceded by its invoke 50 ms earlier."""
    ops: list[Op] = []
    for i, (t, type) in enumerate(completions):
        ops += [w(t - 0.05, "invoke", i), w(t, type, i)]
    return History(ops)


def test_downtime_from_last_ack_before_to_first_ack_after() -> None:
    h = writes((9.0, "ok"), (10.0, "ok"), (11.0, "fail"), (12.0, "info"), (12.5, "fail"), (13.080, "ok"))
    o = outage(h, "mysql", since=10.5)
    assert o == Outage("mysql", start=10.0, end=13.080, downtime_ms=3080, failed_ops=2, indeterminate_ops=1)
    c = downtime_check(o, 5000)
    assert c.passed and c.name == "downtime:mysql"
    assert "3080 ms" in c.detail and "5000 ms" in c.detail and MEASURED_BY in c.detail


def test_last_ack_before_may_precede_since() -> None:
    h = writes((10.0, "ok"), (20.0, "fail"), (21.5, "ok"))
    assert outage(h, "mysql", since=15.0).downtime_ms == 11500


def test_over_bound_fails() -> None:
    h = writes((10.0, "ok"), (11.0, "fail"), (13.080, "ok"))
    c = downtime_check(outage(h, "mysql", since=10.5), 3000)
    assert not c.passed
    assert "3080 ms" in c.detail and "bound 3000 ms" in c.detail


def test_never_recovered_fails() -> None:
    h = writes((10.0, "ok"), (11.0, "fail"), (12.0, "info"), (13.0, "fail"))
    o = outage(h, "mysql", since=10.5)
    assert o.downtime_ms is None and o.end is None and o.start == 10.0 and not o.recovered
    assert (o.failed_ops, o.indeterminate_ops) == (2, 1)
    c = downtime_check(o, None)
    assert not c.passed and "never recovered" in c.detail


def test_no_failure_after_since_is_zero() -> None:
    h = writes((10.0, "ok"), (11.0, "fail"), (12.0, "ok"), (13.0, "ok"))
    assert outage(h, "mysql", since=12.5) == Outage("mysql", None, None, 0, 0, 0)
    assert downtime_check(outage(h, "mysql", since=12.5), 0).passed


def test_longest_run_wins() -> None:
    h = writes((10.0, "ok"), (10.5, "fail"), (11.0, "ok"), (12.0, "fail"), (12.2, "fail"), (15.0, "ok"))
    o = outage(h, "mysql", since=10.0)
    assert (o.start, o.end, o.downtime_ms, o.failed_ops) == (11.0, 15.0, 4000, 2)


def test_until_cuts_the_history() -> None:
    h = writes((10.0, "ok"), (11.0, "fail"), (20.0, "ok"))
    assert outage(h, "mysql", since=10.5, until=15.0).downtime_ms is None
    assert outage(h, "mysql", since=10.5).downtime_ms == 10000


def test_other_services_and_fs_are_ignored() -> None:
    h = writes((10.0, "ok"), (12.0, "ok"))
    h.append(Op(11.0, "rabbitmq-publisher", "fail", "publish", 1, "rabbitmq"))
    h.append(w(11.0, "fail", 9, process="mysql-writer-2"))
    h.append(Op(11.5, "mysql-reader", "fail", "read", 3, "mysql"))
    h = h.sorted()
    assert outage(h, "rabbitmq", since=10.5).downtime_ms is None
    mysql = outage(h, "mysql", since=10.5)
    assert mysql.downtime_ms == 2000 and mysql.failed_ops == 1  # the failed read is not a write


def test_concurrent_clients_share_the_timeline() -> None:
    probe = Op(10.7, "vip-probe", "ok", "connect", "192.168.42.101:3306", "mysql")
    # The probe's ack at 10.7 is the last ack before the writer's failure at 11.0.
    h = History(writes((10.0, "ok"), (11.0, "fail"), (12.0, "ok")).ops + [probe]).sorted()
    assert outage(h, "mysql", since=10.5).downtime_ms == 1300
    # Here it ends the writer's run of failures that began at 10.6.
    h2 = History(writes((10.0, "ok"), (10.6, "fail"), (12.0, "ok")).ops + [probe]).sorted()
    assert outage(h2, "mysql", since=10.5).downtime_ms == 700
    # Restricting fs to writes ignores the probe.
    assert outage(h2, "mysql", since=10.5, fs=("write",)).downtime_ms == 2000


def test_no_ack_before_failures_measures_from_since() -> None:
    h = writes((11.0, "fail"), (12.345, "ok"))
    o = outage(h, "mysql", since=10.0)
    assert o.start is None and o.downtime_ms == 2345
    assert "from the fault" in downtime_check(o, 5000).detail


def test_gap_without_failures_counts_only_with_max_gap() -> None:
    h = writes((10.0, "ok"), (10.2, "ok"), (16.2, "ok"), (16.4, "ok"))
    assert outage(h, "mysql", since=10.1).downtime_ms == 0
    o = outage(h, "mysql", since=10.1, max_gap_s=2.0)
    assert (o.start, o.end, o.downtime_ms, o.failed_ops) == (10.2, 16.2, 6000, 0)
    assert outage(h, "mysql", since=10.1, max_gap_s=7.0).downtime_ms == 0


def test_failure_run_beats_smaller_gap() -> None:
    h = writes((10.0, "ok"), (13.0, "ok"), (13.5, "fail"), (18.0, "ok"))
    o = outage(h, "mysql", since=10.0, max_gap_s=1.0)
    assert (o.start, o.end, o.downtime_ms) == (13.0, 18.0, 5000)


def test_hung_request_at_the_end_is_never_recovered() -> None:
    h = writes((10.0, "ok"), (10.2, "ok"))
    h.append(w(10.3, "invoke", 99))  # frozen server: the request never returns
    h.append(Op(20.0, "observer", "info", "vip-holders", {"192.168.42.101": ["node1"]}))
    o = outage(h, "mysql", since=10.25, max_gap_s=2.0)
    assert o.downtime_ms is None and o.start == 10.2
    assert not downtime_check(o, 10_000).passed
    assert outage(h, "mysql", since=10.25).downtime_ms == 0  # without max_gap_s a hang is invisible


def test_finished_workload_is_not_hung() -> None:
    h = writes((10.0, "ok"), (10.2, "ok"))
    h.append(Op(20.0, "observer", "info", "vip-holders", {}))
    assert outage(h, "mysql", since=10.1, max_gap_s=2.0).downtime_ms == 0


def test_an_op_slower_than_the_stall_limit_is_an_outage_from_the_ack_before_it() -> None:
    # a SYN lost to a moving VIP: the op sent at 10.1 is answered at 11.15, after TCP's retransmit
    ops = [w(9.95, "invoke"), w(10.0, "ok"), w(10.1, "invoke"), w(11.15, "ok"), w(11.2, "invoke"), w(11.25, "ok")]
    h = History(ops)
    assert outage(h, "mysql", since=10.05).downtime_ms == 0  # no failure, no gap past the resolution
    o = outage(h, "mysql", since=10.05, stall_s=0.5)
    assert (o.start, o.end, o.downtime_ms, o.onset) == (10.0, 11.15, 1150, 10.1)
    assert outage(h, "mysql", since=10.05, stall_s=2.0).downtime_ms == 0  # slower than that it was not


def test_stalls_before_since_do_not_count() -> None:
    h = History([w(9.0, "invoke"), w(10.0, "ok"), w(10.1, "invoke"), w(10.15, "ok")])
    assert outage(h, "mysql", since=10.05, stall_s=0.5).downtime_ms == 0


def test_every_outage_is_listed_in_order_and_summed() -> None:
    h = writes(
        (10.0, "ok"), (11.0, "fail"), (15.0, "ok"),  # 5000 ms
        (16.0, "ok"), (17.0, "fail"), (20.0, "ok"),  # 4000 ms
        (21.0, "ok"), (22.0, "info"), (26.5, "ok"),  # 5500 ms
    )  # fmt: skip
    found = outages(h, "mysql", since=10.5)
    assert [o.downtime_ms for o in found] == [5000, 4000, 5500]
    assert [o.failed_ops + o.indeterminate_ops for o in found] == [1, 1, 1]
    assert total_downtime_ms(found) == 14500
    assert outage(h, "mysql", since=10.5).downtime_ms == 5500  # the longest is still the one outage() names
    assert outages(h, "mysql", since=27.0) == [] and outage(h, "mysql", since=27.0).downtime_ms == 0


def test_a_total_with_an_outage_that_never_ended_is_none() -> None:
    h = writes((10.0, "ok"), (11.0, "fail"), (12.0, "ok"), (13.0, "fail"))
    found = outages(h, "mysql", since=10.5)
    assert [o.recovered for o in found] == [True, False] and total_downtime_ms(found) is None
