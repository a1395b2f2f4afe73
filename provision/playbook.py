"""A playbook turns a scenario into a running system and tells the harness how to load and
judge it. One per chapter group: provision/active_passive.py (ch. 2-3), provision/active_active.py
(ch. 6-9). lab/session.py only talks to this interface."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol, cast

from lab.checks.base import Check
from lab.floors import Floor
from lab.history import History
from lab.scenario import Scenario
from lab.workload.config import WorkloadConfig
from provision.context import Context

# scenario `topology:` -> the module that builds it (lab.scenario.TOPOLOGIES names and describes them)
PLAYBOOKS = {
    "active-passive": "provision.active_passive",
    "active-active": "provision.active_active",
    "quorum": "provision.quorum",
    "api-cluster": "provision.api_cluster",
}


class Playbook(Protocol):
    """What a playbook module offers; each module satisfies it structurally (mypy checks the modules against it)."""

    PACKAGES: list[str]  # Debian packages whose versions go into the report
    HONOURS_LAB_SERVICES: bool  # whether LAB_SERVICES may narrow the services it runs
    VIP_HANDOVER_SAMPLES: int  # observer samples a VIP may show on two nodes while it is handed over (VRRP: 1)

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
    def floor(
        self,
        ctx: Context,
        service: str,
        before: dict[str, str],
        after: dict[str, str],
        membership_change: bool,
        faults: list[tuple[str, str, float]],
        history: History,
    ) -> Floor | None: ...
    def audits(self, ctx: Context) -> list[Check]: ...
    def status(self, ctx: Context) -> str: ...
    def notes(self, ctx: Context) -> list[str]: ...


def playbook_for(scenario: Scenario) -> Playbook:
    """The playbook of the scenario's topology (never of its file name: any file name works)."""
    return cast(Playbook, importlib.import_module(PLAYBOOKS[scenario.topology]))
