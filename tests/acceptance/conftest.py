"""Every acceptance test's outcome goes into its lab's report, so a report's verdict can never
read `pass` for a run whose tests failed."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

from lab.checks.base import Check
from lab.fixtures import FINISHED, providers_requested


@pytest.fixture(scope="session", params=providers_requested())
def provider(request: pytest.FixtureRequest) -> str:
    """The provider a lab runs on: the same test functions run on each one LAB_PROVIDER names."""
    return request.param


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" or (rep.when == "setup" and rep.failed):
        lab = getattr(item, "funcargs", {}).get("lab")
        if lab is not None and rep.skipped:  # a skip proves nothing: a note saying why, never a passed check
            reason = rep.longrepr[-1] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
            lab.report.notes.append(f"skipped test:{item.name}: {str(reason).removeprefix('Skipped: ')[:300]}")
        elif lab is not None:
            detail = "passed" if rep.passed else (str(rep.longrepr).splitlines() or ["failed"])[-1][:300]
            lab.report.checks.append(Check(f"test:{item.name}", rep.passed, detail))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for table, path in FINISHED:
        terminalreporter.write_sep("=", "halab verdict")
        terminalreporter.write(table)
        terminalreporter.write_line(f"report: {path}")
        page = Path(path).with_name("report.html")
        terminalreporter.write_line(f"report.html: {page}" if page.exists() else f"no report.html beside {path}")
