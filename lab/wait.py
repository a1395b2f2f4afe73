"""Bounded waits that poll a condition (tenacity) and say what they saw when they give up."""

from __future__ import annotations

from typing import Protocol, TypeVar, cast

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Thunk(Protocol[T_co]):
    """A callable called with no arguments. Unlike Callable[[], T] it also matches a lambda whose arguments all
    have defaults (`lambda n=node: ...`, the way a loop binds its variable), which mypy cannot infer otherwise."""

    def __call__(self) -> T_co: ...


class WaitTimeout(AssertionError):
    """A condition did not hold within its deadline. An AssertionError so pytest shows it as a failure."""


def until(
    condition: Thunk[T | None],
    *,
    timeout: float,
    what: str,
    seen: Thunk[object] | None = None,
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
        return cast(T, retrying(condition))  # retried until truthy: never None here
    except RetryError:
        observed = ""
        if seen is not None:
            try:
                observed = f"; last seen: {seen()}"
            except Exception as exc:  # the probe itself may fail on a broken node
                observed = f"; could not read state: {exc}"
        raise WaitTimeout(f"timed out after {timeout:.1f}s waiting for {what}{observed}") from None


def holds(
    condition: Thunk[bool],
    *,
    duration: float,
    what: str,
    seen: Thunk[object] | None = None,
    interval: float = 0.2,
) -> None:
    """Poll `condition` for `duration` seconds; it must hold at every poll (an invariant, e.g.
    "membership does not change"). Raise at the first poll where it does not."""
    import time

    end = time.monotonic() + duration
    while True:
        if not condition():
            observed = f"; seen: {seen()}" if seen else ""
            raise WaitTimeout(f"expected {what} to hold for {duration:.1f}s, it stopped holding{observed}")
        if time.monotonic() >= end:
            return
        time.sleep(min(interval, max(0.0, end - time.monotonic())))
