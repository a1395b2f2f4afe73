"""lab.workload.runner.guarded: a client that dies of an exception stops the whole runner (which then exits 1)
and says why on stderr, so the trial fails at once instead of waiting out its deadline for a dead client's ops."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from lab.history import JsonlRecorder
from lab.workload import runner

pytestmark = pytest.mark.unit


def test_a_client_that_dies_stops_the_runner_and_names_itself(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    stop, died = threading.Event(), []

    def dies(_rec: JsonlRecorder) -> None:
        raise RuntimeError("connect: timed out")

    runner.guarded("glance-client", dies, JsonlRecorder(tmp_path / "g.jsonl", "g"), stop, died)
    assert stop.is_set() and died == ["glance-client"]
    err = capsys.readouterr().err
    assert "workload client glance-client died" in err and "RuntimeError: connect: timed out" in err


def test_a_client_that_returns_leaves_the_others_running(tmp_path: Path) -> None:
    stop, died = threading.Event(), []
    runner.guarded("keystone-issuer", lambda _rec: None, JsonlRecorder(tmp_path / "k.jsonl", "k"), stop, died)
    assert not stop.is_set() and died == []
