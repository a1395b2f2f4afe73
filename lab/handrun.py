"""A lab run by hand, judged like a test: `halab record LAB` starts the scenario's workloads and the observer in a
background process (a Trial named `hand-run`), `halab fault`/`halab heal` apply faults and mark them in that
trial's history, and `halab check LAB` stops the recording and gives the verdict a test would (downtime per
fault, lost writes and messages, double VIPs and mounts).

Without a recording, `halab fault` still keeps a ledger of what it applied, so `halab heal LAB ID` heals exactly
that fault, and `halab status` lists what is still applied."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.checks.base import Check
from lab.faults import Fault, FaultError, make
from lab.history import INFO, JsonlRecorder
from lab.providers.common import starttime
from lab.wait import WaitTimeout, until

if TYPE_CHECKING:
    from lab.session import Lab

TRIAL = "hand-run"
# A recording nobody stops ends by itself after this long (HALAB_RECORD_MAX_S): no process is left running forever.
MAX_RECORD_S = float(os.environ.get("HALAB_RECORD_MAX_S", 4 * 3600))


def home(lab: Lab) -> Path:
    d = lab.provider.state_dir / "handrun"
    d.mkdir(parents=True, exist_ok=True)
    return d


class Ledger:
    """Faults applied from the CLI, in order, with ids, times and whether they are healed (faults.json)."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.path = home(lab) / "faults.json"
        self.entries: list[dict[str, Any]] = self._read()

    def _read(self) -> list[dict[str, Any]]:
        return json.loads(self.path.read_text()) if self.path.exists() else []

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Two `halab fault` at once: one waits, then reads what the other wrote (no id taken twice, none lost)."""
        with (self.path.parent / "faults.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.entries = self._read()
            yield

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.entries, indent=2))
        tmp.replace(self.path)

    @staticmethod
    def fault_of(entry: dict[str, Any]) -> Fault:
        return dataclasses.replace(
            make(entry["name"], entry["target"], **entry["params"]), chosen_by=entry.get("chosen_by")
        )

    def applied(self) -> list[tuple[int, Fault]]:
        return [(e["id"], self.fault_of(e)) for e in self.entries if e.get("healed_at") is None]

    def apply(self, fault: Fault) -> tuple[int, Fault]:
        with self._locked():
            return self._apply(fault)

    def _apply(self, fault: Fault) -> tuple[int, Fault]:
        f = fault.resolve(self.lab)
        if f in [g for _, g in self.applied()]:  # one nft table per fault: the same one twice would heal as one
            raise FaultError(f"{f.describe()} is applied already: heal it first")
        at = time.time()
        self._mark("fault", f, at)
        f.apply(self.lab)
        entry_id = max((e["id"] for e in self.entries), default=0) + 1
        self.entries.append(
            {
                "id": entry_id,
                "name": f.name,
                "target": f.target,
                "params": f.params(),
                "chosen_by": f.chosen_by,
                "at": at,
            }
        )
        self._save()
        return entry_id, f

    def heal(self, entry_id: int) -> Fault:
        with self._locked():
            return self._heal(entry_id)

    def _heal(self, entry_id: int) -> Fault:
        entry = next((e for e in self.entries if e["id"] == entry_id and e.get("healed_at") is None), None)
        if entry is None:
            open_ = ", ".join(f"{i}: {f.describe()}" for i, f in self.applied()) or "none"
            raise LookupError(f"no applied fault with id {entry_id} (applied: {open_})")
        f = self.fault_of(entry)
        self._mark("heal", f, time.time())
        f.heal(self.lab)
        entry["healed_at"] = time.time()
        self._save()
        return f

    def _mark(self, what: str, f: Fault, at: float) -> None:
        """Into the recording's history, when one runs: the verdict attributes outages to these marks."""
        trial_dir = recording(self.lab)
        if trial_dir is None:
            return
        value = {"fault": f.name, "target": f.target, **f.params()}
        if f.chosen_by and f.chosen_by != f.target:
            value["selector"] = f.chosen_by
        rec = JsonlRecorder(trial_dir / "nemesis-cli.jsonl", "nemesis")
        rec.record(INFO, what, value, time=at)
        rec.close()


def _state(lab: Lab) -> dict[str, Any]:
    p = home(lab) / "recording.json"
    return json.loads(p.read_text()) if p.exists() else {}


def recording(lab: Lab) -> Path | None:
    """The trial directory of the running recording, if its process is alive (and still the one we started)."""
    st = _state(lab)
    pid, start = st.get("pid"), st.get("start")
    if pid and start and starttime(pid) == start and st.get("trial_dir"):
        return Path(st["trial_dir"])
    return None


def start(lab: Lab) -> Path:
    """Start the recorder in the background; return its trial directory once the workloads answer."""
    if recording(lab):
        raise RuntimeError(f"{lab.scenario.name} is already recording: `halab check {lab.scenario.name}` ends it")
    h = home(lab)
    for name in ("recording.json", "result.json", "stop", "ready"):
        (h / name).unlink(missing_ok=True)
    log = (h / "recorder.log").open("ab")
    argv = [sys.executable, "-m", "lab.handrun", lab.scenario.name, lab.provider_name]
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    (h / "recording.json").write_text(json.dumps({"pid": p.pid, "start": starttime(p.pid)}))
    deadline = 60 + lab.playbook.recovery_deadline_s(lab.ctx)  # the runner's start, then a first ack per service
    try:
        until(
            lambda: (h / "ready").exists() or p.poll() is not None,
            timeout=deadline,
            what="the recorder's workloads to answer",
            seen=lambda: (h / "recorder.log").read_text()[-800:],
        )
    except BaseException:
        _terminate(p.pid, starttime(p.pid))  # never a second recorder behind a failed start
        raise
    if p.poll() is not None:
        raise RuntimeError(f"the recorder exited with {p.returncode}: {(h / 'recorder.log').read_text()[-800:]}")
    return Path(_state(lab)["trial_dir"])


def _terminate(pid: int | None, start: str | None) -> None:
    """SIGTERM the recorder (it stops its workload runner and observer on the way out), SIGKILL if it lingers."""
    if not pid or not start or starttime(pid) != start:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    try:
        until(lambda: starttime(pid) != start, timeout=30, what=f"the recorder {pid} to stop after SIGTERM")
    except WaitTimeout:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def forget(lab: Lab) -> None:
    """On `halab down`: stop a recorder that still runs (its lab is gone) and drop the ledger and recording."""
    st = _state(lab)
    _terminate(st.get("pid"), st.get("start"))
    d = lab.provider.state_dir / "handrun"
    if d.exists():
        shutil.rmtree(d, ignore_errors=True)


def stop(lab: Lab) -> dict[str, Any]:
    """Stop the recording, wait for its verdict, and return it (result.json)."""
    if recording(lab) is None:
        raise RuntimeError(f"{lab.scenario.name} is not recording: `halab record {lab.scenario.name}` starts it")
    h = home(lab)
    (h / "stop").touch()
    # finish() settles, waits for every service's ack, reads everything back: bounded by the recovery deadline
    deadline = 2 * lab.playbook.recovery_deadline_s(lab.ctx) + 120
    until(
        lambda: (h / "result.json").exists() or recording(lab) is None,
        timeout=deadline,
        what="the recorder's verdict",
        seen=lambda: (h / "recorder.log").read_text()[-800:],
    )
    if not (h / "result.json").exists():
        raise RuntimeError(f"the recorder ended without a verdict: {(h / 'recorder.log').read_text()[-800:]}")
    return json.loads((h / "result.json").read_text())


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _record(lab_name: str, provider: str) -> int:
    """The recorder process: a Trial that runs until `stop` appears, then finishes with the CLI's faults."""
    from lab import registry
    from lab.play import MEMBERSHIP
    from lab.session import Lab

    entry = registry.load(lab_name, provider)
    if entry is None:
        print(f"no lab {lab_name} on {provider}", file=sys.stderr)
        return 2
    lab = Lab(entry.scenario, provider=provider, profile=entry.profile, lab=lab_name)
    h = home(lab)
    signal.signal(signal.SIGTERM, _interrupt)  # `halab down` or a failed start: leave the trial's way
    with lab.trial(TRIAL) as t:
        st = _state(lab)
        st["trial_dir"] = str(t.dir)
        (h / "recording.json").write_text(json.dumps(st))
        (h / "ready").touch()
        since = time.time()
        until(lambda: (h / "stop").exists(), timeout=MAX_RECORD_S, interval=0.5, what="`halab check` to stop it")
        ledger = Ledger(lab)
        for e in ledger.entries:
            if e["at"] >= since:
                f = ledger.fault_of(e)
                t.fault_log.append((f, e["at"]))
                t.faults.append((f.label, f.target, e["at"]))
                if e.get("healed_at"):
                    t.heal_log.append((f, e["healed_at"]))
        t.fault_at = t.fault_log[0][1] if t.fault_log else None
        bound_ms = int(lab.playbook.recovery_deadline_s(lab.ctx) * 1000)  # what the configured timeouts allow
        try:
            t.finish(
                bounds_ms={s: bound_ms for s in lab.playbook.services(lab.ctx)},
                membership_change=any(f.name in MEMBERSHIP for f, _ in t.fault_log),
            )
        except WaitTimeout as exc:  # never recovered: a failing verdict with its report
            lab.report.checks.append(Check(f"{TRIAL}: recovery", False, str(exc)))
        except AssertionError as exc:  # a workload client died (the runner stopped) or reading back failed
            lab.report.checks.append(Check(f"{TRIAL}: workload", False, str(exc)))
    path = lab.write_report()
    failed = [f"{c.name}: {c.detail}" for c in lab.report.checks if not c.passed]
    result = {"verdict": lab.report.verdict, "table": lab.report.summary_table(), "report": str(path), "failed": failed}
    (h / "result.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(_record(sys.argv[1], sys.argv[2]))
