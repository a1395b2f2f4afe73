import io
import json
import tarfile
from pathlib import Path

import pytest
import yaml

from lab import schedule as sched
from lab.faults import Fault
from lab.replay import ReplayError, open_bundle, prepare, schedule_of_faults
from lab.scenario import load_scenario
from lab.schedule import Apply, Heal, Sleep, Wait

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def _op(trial: str, t: float, f: str, **value: object) -> dict:
    return {"trial": trial, "time": t, "f": f, "process": "nemesis", "type": "info", "value": value}


# what two trials of the active/passive suite recorded: a crash healed 12.2 s later, then a one-way ring1 cut of the
# MySQL holder (chosen by a selector) healed 3.4 s later
OPS = [
    _op("crash-active", 100.0, "fault", fault="crash", target="node1"),
    _op("crash-active", 112.25, "heal", fault="crash", target="node1"),
    _op("cut", 200.0, "fault", **(PART := {"fault": "partition", "target": "node1", "network": "replication"}),
        one_way=True, selector="vip:mysql"),
    _op("cut", 200.1, "fault-failed", fault="partition", target="node2", error="x"),
    _op("cut", 203.4, "heal", **PART, one_way=True, selector="vip:mysql"),
]


def test_recorded_faults_become_a_schedule_the_loader_accepts(tmp_path: Path) -> None:
    doc = schedule_of_faults(OPS, "run")
    path = tmp_path / "replay.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    scenario = load_scenario(REPO / "scenarios" / "active-passive.yaml")
    actions = sched.plan(sched.load_schedule(path, scenario), seed=1)
    kinds = [type(a).__name__ for a in actions]
    assert kinds == ["Wait", "Apply", "Sleep", "Heal", "Wait", "Apply", "Sleep", "Heal", "Wait"]
    crash, cut = (a for a in actions if isinstance(a, Apply))
    assert isinstance(crash.fault, Fault) and (crash.fault.name, crash.fault.target) == ("crash", "node1")
    assert (cut.fault.name, cut.fault.target) == ("partition", "vip:mysql")  # the selector: resolved by the replay
    assert cut.fault.params() == {"network": "replication", "others": [], "one_way": True}
    sleeps = [a.seconds for a in actions if isinstance(a, Sleep)]
    assert sleeps == [pytest.approx(12.25), pytest.approx(3.4)]
    assert all(a.condition == "settled" for a in actions if isinstance(a, Wait))
    assert [a.ref for a in actions if isinstance(a, Heal)] == [crash.ref, cut.ref]


def test_a_fault_never_healed_is_healed_at_the_end() -> None:
    steps = schedule_of_faults(OPS[:1], "run")["steps"]
    assert steps[-2:] == [{"heal": "all"}, {"wait": "settled"}]


def test_an_unknown_recorded_fault_is_one_clear_error() -> None:
    with pytest.raises(ReplayError, match="'melt' is not in this halab's vocabulary"):
        schedule_of_faults([_op("t", 1.0, "fault", fault="melt", target="node1")], "run")


def _run_dir(root: Path, schedule: dict | None) -> Path:
    run = root / "reports" / "lab1" / "20261201T000000Z"
    (run / "evidence" / "run").mkdir(parents=True)
    (run / "report.json").write_text(json.dumps({"scenario": "lab1", "verdict": "pass", "events": [], "checks": []}))
    (run / "bundle.json").write_text(json.dumps({"lab": "lab1", "seed": 5, "schedule": schedule}))
    (run / "evidence" / "run" / "scenario-active-passive.yaml").write_text("x")
    (run / "evidence" / "run" / "faults.json").write_text(json.dumps(OPS))
    return run


def test_a_suite_run_replays_its_recorded_faults(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, None)
    manifest, scenario, schedule, seed = prepare(run, tmp_path)
    assert (manifest["lab"], scenario.name, seed) == ("lab1", "active-passive.yaml", 5)
    assert scenario.read_text() == "x"
    assert yaml.safe_load(schedule.read_text())["steps"][1] == {"fault": "crash", "target": "node1", "id": "f1"}


def test_a_schedule_run_replays_its_bundled_schedule_and_seed(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, {"path": "schedules/ap-freeze.yaml", "seed": 42})
    (run / "evidence" / "run" / "schedule-ap-freeze.yaml").write_text("steps: []")
    _, _, schedule, seed = prepare(run, tmp_path)
    assert (schedule.name, seed) == ("ap-freeze.yaml", 42)  # its trial is named after it, as in the original


def test_a_packed_bundle_is_unpacked_and_found(tmp_path: Path) -> None:
    run = _run_dir(tmp_path / "src", None)
    archive = tmp_path / "run.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(run, arcname=run.name)
    found = open_bundle(archive, tmp_path / "work")
    assert (found / "bundle.json").is_file() and found.name == run.name


def test_an_archive_writing_outside_its_directory_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        data = b"{}"
        info = tarfile.TarInfo("../outside/bundle.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ReplayError, match="not a plain file under the bundle"):
        open_bundle(archive, tmp_path / "work")
    assert not (tmp_path / "outside").exists()


def test_not_a_bundle_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="not a run directory or a .tar.gz bundle"):
        open_bundle(tmp_path / "nothing.zip", tmp_path)
    (tmp_path / "run").mkdir()
    with pytest.raises(ReplayError, match="no bundle.json"):
        open_bundle(tmp_path / "run", tmp_path)
