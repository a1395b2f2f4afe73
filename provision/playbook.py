"""A playbook turns a scenario into a running system and tells the harness how to load and
judge it. One per chapter group: provision/active_passive.py (ch. 2-3), provision/active_active.py
(ch. 6-9). lab/session.py only talks to this interface."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Protocol

from lab.checks.base import Check
from lab.scenario import Scenario
from lab.workload.config import WorkloadConfig
from provision.context import Context


class Playbook(Protocol):
    PACKAGES: list[str]  # Debian packages whose versions go into the report

    def converge(self, ctx: Context) -> None: ...
    def services(self, ctx: Context) -> list[str]: ...
    def workload(self, ctx: Context, out_dir: Path, run_id: int) -> WorkloadConfig: ...
    def vip_of(self, ctx: Context, service: str) -> str | None: ...
    def settle(
        self, ctx: Context, *, on: str | None = None, avoid: str | None = None, timeout: float | None = None
    ) -> dict[str, str]: ...
    def recovered_on(self, ctx: Context, service: str, placed: dict[str, str]) -> str | None: ...
    def recovery_deadline_s(self, ctx: Context) -> float: ...
    def restart_node(self, ctx: Context, node: str) -> None: ...
    def restart_nodes(self, ctx: Context, nodes: list[str]) -> str: ...
    def start_service(self, ctx: Context, node: str, service: str) -> None: ...
    def floor_ms(
        self,
        ctx: Context,
        service: str,
        before: dict[str, str],
        after: dict[str, str],
        membership_change: bool,
        faults: list[tuple[str, str, float]],
    ) -> int | None: ...
    def audits(self, ctx: Context) -> list[Check]: ...
    def status(self, ctx: Context) -> str: ...
    def notes(self, ctx: Context) -> list[str]: ...


def playbook_for(scenario: Scenario) -> ModuleType:
    """scenarios/active-passive.yaml -> provision/active_passive.py, and so on."""
    name = scenario.name.replace("-", "_")
    try:
        return importlib.import_module(f"provision.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"provision.{name}":
            raise
        raise LookupError(f"no playbook provision/{name}.py for scenario {scenario.name}") from None
