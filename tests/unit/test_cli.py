import pytest

from lab.cli import build_parser, main

pytestmark = pytest.mark.unit


def test_parser_knows_the_lifecycle_verbs() -> None:
    p = build_parser()
    for verb in ("up", "provision", "status", "down"):
        assert p.parse_args([verb, "active-passive"]).command == verb


def test_fault_arguments() -> None:
    a = build_parser().parse_args(["fault", "active-passive", "partition", "ring0", "node1", "node2", "--one-way"])
    assert (a.fault, a.args, a.one_way) == ("partition", ["ring0", "node1", "node2"], True)


def test_unknown_scenario_is_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "no-such-scenario", "--provider", "netns"]) == 2
    err = capsys.readouterr().err
    assert "no-such-scenario" in err and "Fix:" in err


def test_unknown_provider_is_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "active-passive", "--provider", "docker"]) == 2
    assert "use netns, libvirt or auto" in capsys.readouterr().err


def test_unknown_node_in_a_fault_is_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fault", "active-passive", "freeze", "nodeX", "--provider", "netns"]) == 2
    err = capsys.readouterr().err
    assert "no node 'nodeX'" in err and "node1" in err
