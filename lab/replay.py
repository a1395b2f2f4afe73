"""`halab replay BUNDLE`: rerun a bundled run (lab/bundle.py) with the same scenario, profile, schedule and seed,
then print both runs side by side (lab/compare.py).

A run that played a schedule replays that schedule file, as bundled. A test suite's run has no schedule: its
faults and heals, in order, with the time between them (evidence/run/faults.json, from each trial's nemesis
history), become one: every trial starts with `wait: settled`, then its faults and heals at the recorded spacing.
The tests' own assertions are not replayed; their faults are, and the replay is judged by the same checks."""

from __future__ import annotations

import dataclasses
import json
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from lab.bundle import reports_dir
from lab.compare import side_by_side
from lab.faults import FAULTS

MANIFEST = "bundle.json"
RUN = "evidence/run"


class ReplayError(Exception):
    """A bundle that cannot be replayed: one line naming the file and what is missing."""


def open_bundle(path: Path, work: Path) -> Path:
    """The run directory of a bundle: the directory itself, or a .tar.gz unpacked under `work`."""
    if path.is_dir():
        run = path
    elif path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(path, "r:gz") as tar:
            tar.extractall(work, members=_plain_members(tar, work, path))
        found = sorted(p.parent for p in work.rglob(MANIFEST))
        if not found:
            raise ReplayError(f"{path}: no {MANIFEST} inside: not a halab bundle (`halab bundle RUN` makes one)")
        run = found[0]
    else:
        raise ReplayError(f"{path}: not a run directory or a .tar.gz bundle: pass what `halab bundle` printed")
    for needed in (MANIFEST, "report.json"):
        if not (run / needed).is_file():
            raise ReplayError(f"{run}: no {needed}: the run did not finish its report (rerun it, then bundle it)")
    return run


def _plain_members(tar: tarfile.TarFile, work: Path, path: Path) -> list[tarfile.TarInfo]:
    """Only files and directories that land under `work` (Debian 12's Python 3.11.2 has no tarfile filters): a
    bundle is shared between people, and an archive must not write outside where it is unpacked."""
    members = tar.getmembers()
    for m in members:
        if not (m.isfile() or m.isdir()) or not (work / m.name).resolve().is_relative_to(work.resolve()):
            raise ReplayError(f"{path}: member {m.name!r} is not a plain file under the bundle: refusing to unpack")
    return members


def _one(run: Path, pattern: str, what: str) -> Path:
    hits = sorted((run / RUN).glob(pattern))
    if not hits:
        raise ReplayError(f"{run / RUN}: no {what} ({pattern}) in the bundle")
    return hits[0]


def schedule_of_faults(ops: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """A schedule (lab/schedule.py's format) that applies and heals the recorded faults in order, at their recorded
    spacing, each trial after the cluster settled."""
    steps: list[dict[str, Any]] = []
    pending: list[tuple[str, dict[str, Any]]] = []  # (step id, recorded value) of faults applied, not healed
    prev: dict[str, Any] | None = None
    for n, op in enumerate(o for o in ops if o.get("f") in ("fault", "heal")):
        value = op.get("value") or {}
        if prev is None or op.get("trial") != prev.get("trial"):
            steps.append({"wait": "settled"})
        elif (gap := float(op["time"]) - float(prev["time"])) > 0.001:
            steps.append({"sleep": f"{gap:.3f}s"})
        prev = op
        if op["f"] == "fault":
            fault = str(value.get("fault"))
            if fault not in FAULTS:
                raise ReplayError(f"{name}: recorded fault {fault!r} is not in this halab's vocabulary")
            fields = {f.name for f in dataclasses.fields(FAULTS[fault])} - {"target", "chosen_by"}
            step = {"fault": fault, "target": value.get("selector") or value.get("target")}
            step |= {k: v for k, v in value.items() if k in fields}
            ref = step["id"] = f"f{n + 1}"
            steps.append(step)
            pending.append((ref, value))
        else:  # the newest applied fault the heal names (a heal op records the fault's own value)
            match = next((i for i, (_, v) in reversed(list(enumerate(pending))) if v == value), None)
            if match is not None:
                steps.append({"heal": pending.pop(match)[0]})
    steps += [{"heal": "all"}, {"wait": "settled"}] if pending else [{"wait": "settled"}]
    return {"description": f"the faults of {name}, replayed in order at their recorded spacing", "steps": steps}


def prepare(run: Path, work: Path) -> tuple[dict[str, Any], Path, Path, int]:
    """(manifest, scenario file, schedule file, seed) of a bundled run; a test suite's faults become a schedule."""
    manifest = json.loads((run / MANIFEST).read_text())
    bundled = _one(run, "scenario-*", "scenario file")
    # under its own file name again: a scenario's stem is its lab's default name, and must be a valid one
    scenario = work / "scenario" / (Path(str(manifest.get("scenario") or "")).name or bundled.name[len("scenario-") :])
    scenario.parent.mkdir(parents=True, exist_ok=True)
    scenario.write_bytes(bundled.read_bytes())
    recorded = manifest.get("schedule") or {}
    seed = int(recorded.get("seed", manifest.get("seed", 0)))
    if recorded.get("path"):  # under its own name too: the trial is named after it
        schedule = work / "schedule" / Path(str(recorded["path"])).name
        schedule.parent.mkdir(parents=True, exist_ok=True)
        schedule.write_bytes(_one(run, "schedule-*", "schedule file").read_bytes())
        return manifest, scenario, schedule, seed
    ops = json.loads(_one(run, "faults.json", "fault history").read_text())
    if not any(o.get("f") == "fault" for o in ops):
        raise ReplayError(f"{run}: the run applied no fault: nothing to replay")
    schedule = work / f"replay-{run.name}.yaml"
    schedule.write_text(yaml.safe_dump(schedule_of_faults(ops, str(run)), sort_keys=False))
    return manifest, scenario, schedule, seed


def trial_names(run: Path) -> set[str]:
    return {p.name for p in (run / "trials").iterdir() if p.is_dir()} if (run / "trials").is_dir() else set()


def replay(
    bundle: Path, *, provider: str | None = None, lab_name: str | None = None, echo: Callable[[str], None] = print
) -> tuple[str, str]:
    """Rerun the bundle's run; returns (the replay's verdict, the side-by-side comparison)."""
    from lab import play
    from lab import schedule as sched
    from lab.scenario import load_scenario, renamed
    from lab.session import Lab

    # unpacked where it stays: the replay lab's registry entry names the scenario file in it (`halab down` reads it)
    work = reports_dir() / "replays" / bundle.name.removesuffix(".tar.gz").removesuffix(".tgz")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    run = open_bundle(bundle, work)
    manifest, scenario_file, schedule_file, seed = prepare(run, work)
    original = json.loads((run / "report.json").read_text())
    name = lab_name or manifest.get("lab") or original["scenario"]
    sc = renamed(load_scenario(scenario_file), name)
    schedule = sched.load_schedule(schedule_file, sc)
    lab = Lab(sc, provider=provider or manifest.get("provider"), profile=manifest.get("profile"), seed=seed)
    echo(f"replaying {run.name} of {name}: profile {lab.profile}, seed {seed}, schedule {schedule_file.name}")
    play.run(lab, schedule, sched.plan(schedule, seed), echo=echo)
    again = json.loads((lab.run_dir / "report.json").read_text())
    prefixes = trial_names(run) | trial_names(lab.run_dir)
    return again["verdict"], side_by_side(original, again, prefixes=prefixes)
