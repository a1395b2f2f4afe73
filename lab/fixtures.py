"""Helpers for the acceptance suites: one lab per module (profile), brought up once, reused by
every test of that module, torn down even when a test fails or the run is interrupted."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from lab.providers import ProviderError, Unsupported
from lab.session import Lab

# (summary table, report path) of every lab this session ran; printed in pytest's terminal summary.
FINISHED: list[tuple[str, str]] = []


def _sigterm_to_interrupt(*_: object) -> None:
    raise KeyboardInterrupt  # so fixture teardown runs when CI or a user sends SIGTERM


def make_lab(scenario: str, profile: str | None) -> Iterator[Lab]:
    signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
    try:
        lab = Lab(scenario, profile=profile)
    except Unsupported as exc:
        pytest.skip(str(exc))
    print(f"\n[halab] {scenario} on {lab.provider_name} ({lab.provider_reason}), profile {lab.profile}")
    try:
        lab.up()
        lab.provision()
        yield lab
    except ProviderError as exc:
        pytest.fail(str(exc), pytrace=False)
    finally:
        try:
            path = lab.write_report()
            FINISHED.append((f"provider: {lab.provider_reason}\n{lab.report.summary_table()}", str(path)))
        finally:
            if os.environ.get("HALAB_KEEP") != "1":
                lab.down()
