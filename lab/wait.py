"""Bounded waits that poll a condition (tenacity) and say what they saw when they give up."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from lab.scenario import ClusterOptions

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A condition did not hold within its deadline. An AssertionError so pytest shows it as a failure."""


def until(
    condition: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    seen: Callable[[], object] | None = None,
    interval: float = 0.05,
) -> T:
    """Poll `condition` until it returns something truthy; return that. Raise WaitTimeout naming
    `what` and, if given, the last `seen()` after `timeout` seconds."""
    retrying = Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
        retry=retry_if_result(lambda r: not r),
        reraise=True,
    )
    try:
        return retrying(condition)  # type: ignore[return-value]
    except RetryError:
        observed = ""
        if seen is not None:
            try:
                observed = f"; last seen: {seen()}"
            except Exception as exc:  # the probe itself may fail on a broken node
                observed = f"; could not read state: {exc}"
        raise WaitTimeout(f"timed out after {timeout:.1f}s waiting for {what}{observed}") from None


def membership_deadline_s(opts: ClusterOptions) -> float:
    """Worst case for corosync to declare a peer lost: token timeout (with retransmits folded in,
    corosync 3 computes it as token) plus consensus, for the new membership to form."""
    return (opts.token_ms + opts.consensus_ms) / 1000.0
