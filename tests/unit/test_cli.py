"""lab/cli.py: the verbs exist, faults come from the registry, and every failure is one line with exit code 2."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lab.cli import cli, main
from lab.cli_faults import fault_group
from lab.faults import FAULTS

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HALAB_STATE_DIR", str(tmp_path / "state"))  # no lab of this machine is seen or touched


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("halab: "), err
    assert "Traceback" not in err
    return err


def test_the_verbs_people_live_in_exist() -> None:
    verbs = {
        "up",
        "provision",
        "down",
        "list",
        "status",
        "exec",
        "shell",
        "logs",
        "fault",
        "heal",
        "record",
        "check",
        "run",
        "report",
        "box",
    }
    assert verbs <= set(cli.commands)


def test_fault_subcommands_and_their_help_come_from_the_registry() -> None:
    assert set(fault_group.commands) == set(FAULTS)
    for name, cls in FAULTS.items():
        assert cls.help in (fault_group.commands[name].help or "")
    partition = {p.name for p in fault_group.commands["partition"].params}
    assert {"target", "network", "others", "one_way"} <= partition


def test_unknown_scenario_is_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "no-such-scenario", "--provider", "netns"]) == 2
    err = one_line_error(capsys)
    assert "no-such-scenario" in err and "Fix:" in err


def test_unknown_provider_is_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "active-passive", "--provider", "docker"]) == 2
    assert "use netns, libvirt or auto" in one_line_error(capsys)


def test_unknown_node_in_a_fault_is_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fault", "active-passive", "freeze", "nodeX", "--provider", "netns"]) == 2
    err = one_line_error(capsys)
    assert "no node 'nodeX'" in err and "node1" in err


def test_unknown_fault_and_bad_parameter_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fault", "active-passive", "explode", "node1"]) == 2
    assert "explode" in one_line_error(capsys)
    assert (
        main(
            [
                "fault",
                "active-passive",
                "packet_loss",
                "node1",
                "--network",
                "ring0",
                "--percent",
                "300",
                "--provider",
                "netns",
            ]
        )
        == 2
    )
    assert "between 1 and 100" in one_line_error(capsys)


def test_a_scenario_under_any_file_name_is_its_own_lab(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "my-cluster.yaml"
    shutil.copy("scenarios/active-passive.yaml", copy)
    assert main(["status", str(copy), "--provider", "netns"]) == 2
    assert "my-cluster is not up" in one_line_error(capsys)


def test_list_with_no_labs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    assert "no labs are up" in capsys.readouterr().out


def test_the_readme_lists_every_fault_of_the_registry() -> None:
    readme = Path("README.md").read_text()
    for name in FAULTS:
        assert f"| `{name}` |" in readme, f"README's fault table misses {name}"


def test_a_command_exit_code_is_the_process_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """`halab check` and `halab run` exit 1 on a failing verdict: click's Exit must reach the shell."""
    import click

    @cli.command("always-fails", hidden=True)
    def always_fails() -> None:
        raise click.exceptions.Exit(1)

    try:
        assert main(["always-fails"]) == 1
    finally:
        cli.commands.pop("always-fails")


def test_exec_and_shell_take_a_node_alone_while_one_lab_is_up(capsys: pytest.CaptureFixture[str]) -> None:
    """`halab exec node1 -- crm_mon -1`: the one lab up is meant (here: registered under a name no lab of this
    machine has, so nothing real is entered: its nodes are not running)."""
    from lab import registry
    from lab.scenario import load_scenario, renamed

    assert main(["exec", "node1", "--", "crm_mon", "-1"]) == 2  # no lab up: node1 is taken for a lab, and is none
    assert "node1: (file): no such scenario file" in one_line_error(capsys)
    registry.record(renamed(load_scenario("active-passive"), "unit-cli-ap"), "netns", "guide")
    assert main(["exec", "node1", "--", "crm_mon", "-1"]) == 2
    assert "unit-cli-ap is not up on netns" in one_line_error(capsys)
    assert main(["shell", "node2"]) == 2
    assert "unit-cli-ap is not up on netns" in one_line_error(capsys)
    assert main(["exec", "nodeX", "--", "true"]) == 2  # not a node of it: LAB nodeX NODE true, no command
    assert "up now: unit-cli-ap" in one_line_error(capsys)
    registry.record(renamed(load_scenario("active-active"), "unit-cli-aa"), "netns", "guide")
    assert main(["shell", "node1"]) == 2  # two labs up: which one is not guessed
    assert "up now: unit-cli-aa, unit-cli-ap" in one_line_error(capsys)
