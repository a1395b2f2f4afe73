"""Vagrantfile: parses, defines one VM per scenario node, and fails clearly on a bad scenario.

Runs the real `vagrant` (no VM is created: status/validate only read the Vagrantfile).
Skipped where vagrant, or its libvirt plugin, is not installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lab.scenario import load_scenario

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]

needs_vagrant = pytest.mark.skipif(shutil.which("vagrant") is None, reason="vagrant not installed")


def _vagrant(
    tmp_path: Path, scenario: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {
        **os.environ,
        "VAGRANT_DEFAULT_PROVIDER": "libvirt",
        "LAB_SCENARIO": scenario,
        # Keep vagrant's machine state out of the work tree, and vagrant off the network.
        "VAGRANT_DOTFILE_PATH": str(tmp_path / "dotvagrant"),
        "VAGRANT_CHECKPOINT_DISABLE": "1",
        "VAGRANT_NO_COLOR": "1",
        **(env or {}),
    }
    proc = subprocess.run(
        ["vagrant", *args], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=60, check=False
    )
    if "ProviderNotFound" in proc.stdout + proc.stderr:
        pytest.skip("vagrant-libvirt not installed")
    return proc


def _machines(machine_readable: str) -> dict[str, str]:
    """target -> provider, from `--machine-readable` lines (timestamp,target,type,data...).

    Warnings and ui lines are ignored, so vagrant's chatter cannot break the test.
    """
    machines = {}
    for line in machine_readable.splitlines():
        fields = line.split(",", 3)
        if len(fields) == 4 and fields[1] and fields[2] == "provider-name":
            machines[fields[1]] = fields[3].strip()
    return machines


@needs_vagrant
def test_status_lists_every_scenario_node_on_libvirt(tmp_path: Path) -> None:
    proc = _vagrant(tmp_path, "active-passive", "status", "--machine-readable")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    machines = _machines(proc.stdout)
    assert {"node1", "node2", "client"} <= set(machines), proc.stdout
    # Data-driven: exactly the scenario's nodes, no leftover hard-coded VM.
    assert set(machines) == set(load_scenario("active-passive").nodes)
    assert set(machines.values()) == {"libvirt"}


@needs_vagrant
def test_validate_accepts_the_libvirt_options(tmp_path: Path) -> None:
    # vagrant-libvirt rejects unknown provider settings here, so a misspelt option fails.
    proc = _vagrant(tmp_path, "active-passive", "validate")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "validated successfully" in proc.stdout


@needs_vagrant
def test_missing_scenario_is_named(tmp_path: Path) -> None:
    proc = _vagrant(tmp_path, "does-not-exist", "status", "--machine-readable")
    assert proc.returncode != 0
    assert "scenarios/does-not-exist.yaml" in proc.stdout + proc.stderr


@needs_vagrant
def test_lab_nodes_limits_the_vms(tmp_path: Path) -> None:
    # The harness runs client-only nodes as namespaces and asks for the cluster VMs alone.
    proc = _vagrant(tmp_path, "active-passive", "status", "--machine-readable", env={"LAB_NODES": "node1,node2"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert set(_machines(proc.stdout)) == {"node1", "node2"}


@needs_vagrant
def test_lab_nodes_naming_an_unknown_node_is_refused(tmp_path: Path) -> None:
    proc = _vagrant(tmp_path, "active-passive", "status", env={"LAB_NODES": "node1,node9"})
    assert proc.returncode != 0
    assert "node9" in proc.stdout + proc.stderr and "scenarios/active-passive.yaml" in proc.stdout + proc.stderr
