"""lab/workload/identity.py: the backlog the Keystone clients can leave in Keystone's queue during a stall, which the
crash test adds to its bound, follows the workload's own timers."""

from __future__ import annotations

import pytest

from lab.workload import identity
from lab.workload.config import WorkloadConfig

pytestmark = pytest.mark.unit


def test_the_abandoned_backlog_counts_one_request_per_client_per_timeout_each_served_within_stall_s() -> None:
    cfg = WorkloadConfig(out_dir="/nonexistent", run_id=1, interval_s=0.05, op_timeout_s=1.0)
    # 60 s of hung workers: each client gives up a request every 2.05 s (30 of them), each served within 0.5 s
    assert identity.abandoned_backlog_ms(cfg, 60000) == identity.CLIENTS * 30 * 500
    slower = WorkloadConfig(out_dir="/nonexistent", run_id=1, interval_s=0.05, op_timeout_s=2.0)
    assert identity.abandoned_backlog_ms(slower, 60000) == identity.CLIENTS * 15 * 1000
    assert identity.abandoned_backlog_ms(cfg, 0) == 0  # no stall (hardened: HAProxy drops the sessions)
