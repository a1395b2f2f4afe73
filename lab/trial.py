"""A trial: one fault experiment under load. The workload and the observer run while faults (values from
lab/faults.py) are applied and healed, each recorded in the history as a nemesis op; `finish` turns the history
into events (downtime per service, each attributed to the fault that caused it) and checks."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lab import bounds, evidence, progress
from lab.checks.availability import Outage
from lab.checks.base import Check
from lab.checks.durability import image_intact, lost_api_messages, lost_messages, lost_writes
from lab.checks.quorum import quorum_transitions, resources_in_quorum
from lab.checks.quorum_partitions import quorum_partitions
from lab.checks.split_brain import double_mounts, split_brain_in_window, vip_holders
from lab.faults import Fault, FaultError, make
from lab.history import INFO, History, JsonlRecorder
from lab.observer import Observer
from lab.report import Event
from lab.trial_events import WORK_FS, timing
from lab.wait import until
from lab.workload.backlog import hold_backlog

if TYPE_CHECKING:
    from lab.session import Lab

# The whole trial's history, merged, written next to the per-client files when the trial finishes.
MERGED = "history.jsonl"
# The parts of every floor the trial computed (lab/floors.py), with what its downtime was measured from.
FLOORS = "floors.json"
LIVE_POLICY = "crm_attribute -t crm_config -n no-quorum-policy -G -q"  # the CIB's, as the cluster runs
# Starting the Python workload process (imports pymysql, pika) on a busy 2-core machine.
RUNNER_START_S = 30
# Healing a kill_service also undoes a stop_service of the same service (both are healed by starting it).
HEALED_BY = {"kill_service": ("kill_service", "stop_service"), "stop_service": ("stop_service", "kill_service")}


@dataclass
class TrialResult:
    history: History
    outages: dict[str, Outage]
    checks: list[Check]
    events: list[Event]
    fault_at: float | None
    placement_after: dict[str, str] = field(default_factory=dict)

    def check(self, name_part: str) -> Check:
        return next(c for c in self.checks if name_part in c.name)


class Trial:
    """One fault experiment under load. Use as a context manager: the workload stops even if the
    test fails half-way, and the history is kept under the run directory."""

    def __init__(self, lab: Lab, name: str) -> None:
        self.lab = lab
        self.name = name
        self.dir = lab.run_dir / "trials" / name
        self.dir.mkdir(parents=True, exist_ok=True)
        sc = lab.scenario
        self.cfg = lab.playbook.workload(lab.ctx, self.dir, int(time.time()))
        # the workload's config holds the lab's passwords: in the lab's 0700 state dir, never under reports/
        private = lab.provider.state_dir / "trials"
        private.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.cfg_path = private / f"{lab.run_dir.name}-{name}.json"
        self.cfg.write(self.cfg_path)
        self.nemesis = JsonlRecorder(self.dir / "nemesis.jsonl", "nemesis")
        vips = [str(v.address) for v in sc.vips.values()]
        self.observer = Observer(
            lab.provider, vips, list(lab.provider.shared_disks().values()), self.dir, lab.provider.observe_period_s,
            quorum_nodes=lab.cluster_nodes,  # the cluster under test (ch. 4's lab holds two: one quorum each)
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.fault_at: float | None = None
        self.faults: list[tuple[str, str, float]] = []  # (label, node, when): what playbooks' floors read
        self.fault_log: list[tuple[Fault, float]] = []  # every fault applied, in order, with its time
        self.heal_log: list[tuple[Fault, float]] = []  # every heal, with its time (a failback is its outage)
        self.applied: list[Fault] = []  # faults not healed yet
        self.groups_before: dict[str, str] = {}
        self.held_backlog = 0  # confirmed messages queued behind the paused consumer at the first fault
        self.placed_after_fault: dict[str, str] | None = None  # where things ran once the fault's move was done

    @property
    def resolution_ms(self) -> int:
        """How much later than the service's return the history can show it: an op started just before may hang
        for as long as a client waits, and the next starts one interval later. Timer-derived bounds add this."""
        return int((self.cfg.interval_s + self.cfg.max_op_s) * 1000)

    def __enter__(self) -> Trial:
        try:
            self.start()
        except BaseException:
            self.__exit__()  # a half-started trial must not leave its workload and observer running
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None = None, *exc: object) -> None:
        self.lab.report.timings_s[f"trial:{self.name}"] = round(time.monotonic() - getattr(self, "t0", 0.0), 2)
        step: progress.Step | None = getattr(self, "_step", None)
        try:
            if self.proc and self.proc.poll() is None:  # finish() stops it; a failed test did not get there
                progress.note("stopping the workload")
            self._stop_workload()
            if self.observer._thread.is_alive():
                self.observer.stop()
            if exc_type is not None:
                if self.applied:
                    progress.note(f"undoing {len(self.applied)} applied faults")
                self._undo_faults("the test failed")
            evidence.snapshot(self.lab, f"after-{self.name}")  # also after a failed trial: what it left
        finally:
            if step is not None:  # ended here even when the teardown fails: a spinner left running redraws forever
                step.end(exc_type)  # once: a second end does nothing

    def _undo_faults(self, why: str) -> None:
        """A test that failed half-way must not leave its fault for the next test: heal what is still applied,
        newest first, and say in the report what was undone."""
        for f in reversed(list(self.applied)):
            try:
                self.heal(f)
                self.lab.report.notes.append(f"{self.name}: undid {f.describe()} after {why}")
            except Exception as exc:  # keep undoing the rest; the test's own failure is what pytest shows
                self.lab.report.notes.append(f"{self.name}: could not undo {f.describe()}: {exc}")

    def start(self) -> None:
        self.t0 = time.monotonic()
        step = progress.begin(f"trial {self.name}")
        self._step = step  # __exit__ ends it
        try:
            evidence.snapshot(self.lab, "start")  # a lab provisioned by an earlier run has none yet; else a no-op
            progress.note("settling")
            self.groups_before = self.lab.settle()
            progress.note(f"workload on {self.lab.client}: a first acknowledged op per service")
            self.observer.start()
            self.proc = proc = self.lab.provider.spawn(
                self.lab.client,
                [sys.executable, "-m", "lab.workload.runner", str(self.cfg_path)],
                log=self.dir / "workload.log",
            )
            until(
                lambda: (self.dir / "started").exists() or proc.poll() is not None,
                timeout=RUNNER_START_S,
                what="the workload runner to start",
                seen=lambda: (self.dir / "workload.log").read_text()[-500:],
            )
            self.runner_alive()
            # Baseline: every service answers before the fault, or the measurement would mean nothing.
            for svc in self.lab.playbook.services(self.lab.ctx):
                until(
                    lambda s=svc: self.runner_alive() and self.history().select(service=s, type="ok", f=WORK_FS),
                    timeout=self.lab.playbook.recovery_deadline_s(self.lab.ctx),
                    what=f"a first acknowledged {svc} op before the fault",
                    seen=lambda: (self.dir / "workload.log").read_text()[-800:],
                )
        except BaseException as exc:  # __enter__ then calls __exit__() without the exception: the step says failed
            step.fail(exc)
            raise
        progress.note("under load: the faults and their recovery")

    def settle(
        self, *, on: str | None = None, avoid: str | None = None, timeout: float | None = None
    ) -> dict[str, str]:
        """Wait until the system runs as configured again and remember where: the first fault's move, which its
        floor and `recovered_on` describe, even when a heal inside the trial moves things back (a failback)."""
        placed = self.lab.settle(on=on, avoid=avoid, timeout=timeout)
        if self.fault_log and not self.heal_log and self.placed_after_fault is None:
            self.placed_after_fault = placed
        return placed

    def clients_back(self) -> None:
        """Wait until every service's client has an op acknowledged after now: a test heals inside the trial only
        once the fault's outage has ended (a heal while requests still hang would take their failures as its own),
        and the trial stops its load only then."""
        since = time.time()
        for svc in self.lab.playbook.services(self.lab.ctx):
            until(
                lambda s=svc: (
                    self.runner_alive() and self.history().select(service=s, type="ok", f=WORK_FS, since=since)
                ),
                # a group can look whole while a pending recovery is about to restart it
                timeout=self.lab.playbook.recovery_deadline_s(self.lab.ctx),
                what=f"an acknowledged {svc} op after recovery",
                seen=lambda: (self.dir / "workload.log").read_text()[-800:],
            )

    def runner_alive(self) -> bool:
        """Raise at once if the workload runner died: every later wait would sit out its whole deadline."""
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(
                f"the workload runner exited with {self.proc.returncode}: "
                f"{(self.dir / 'workload.log').read_text()[-1500:]}"
            )
        return True

    def history(self) -> History:
        """Every client's and observer's ops, merged by time (not the merged dump `finish` writes)."""
        return History.load(*sorted(p for p in self.dir.glob("*.jsonl") if p.name != MERGED))

    def mark(self, f: str, fault: Fault, **extra: Any) -> float:
        value = {"fault": fault.name, "target": fault.target, **fault.params(), **extra}
        if fault.chosen_by and fault.chosen_by != fault.target:
            value["selector"] = fault.chosen_by
        return self.nemesis.record(INFO, f, value).time

    def fault(self, fault: str | Fault, target: str | None = None, **params: Any) -> float:
        """Apply a fault (a value, or its registry name, target selector and parameters) and record when. Before the
        trial's first, the AMQP consumer pauses (to the end, unless a test removes `cfg.pause_flag`) and
        `cfg.backlog` confirmed messages queue behind it."""
        f = fault if isinstance(fault, Fault) else make(fault, target or "", **params)
        f.check(self.lab.scenario)
        cfg = self.cfg
        if cfg.amqp and cfg.backlog and not self.held_backlog:  # once: a test may lift the pause
            self.held_backlog = hold_backlog(self)  # what finish's lost-messages check requires at the fault
        f = f.resolve(self.lab)  # aimed after the pause: at the system as it is when the fault lands
        if f in self.applied:  # the same fault twice would share its nft table: healing one would heal both
            raise FaultError(f"{f.describe()} is applied already: heal it first")
        at = self.mark("fault", f)
        try:
            f.apply(self.lab)
        except Exception as exc:
            self.mark("fault-failed", f, error=str(exc)[:300])
            raise
        self.applied.append(f)
        self.fault_at = self.fault_at or at
        self.fault_log.append((f, at))
        self.faults.append((f.label, f.target, at))
        return at

    def heal(self, fault: str | Fault, target: str | None = None, **params: Any) -> float:
        """Heal one applied fault: the value itself, or the newest applied one matching name, node and params."""
        f = self._applied_match(fault, target, params)
        at = self.mark("heal", f)
        f.heal(self.lab)
        self.applied.remove(f)
        self.heal_log.append((f, at))
        return at

    def _applied_match(self, fault: str | Fault, target: str | None, params: dict[str, Any]) -> Fault:
        if isinstance(fault, Fault):
            if fault in self.applied:
                return fault
            name, target, params = fault.name, fault.chosen_by or fault.target, fault.params()
        else:
            name = fault
        names = HEALED_BY.get(name, (name,))
        for f in reversed(self.applied):
            same_target = target is None or target in (f.target, f.chosen_by)
            p = f.params()
            same_params = all(p.get(k) == (list(v) if isinstance(v, tuple) else v) for k, v in params.items())
            if f.name in names and same_target and same_params:
                return f
        applied = "; ".join(f.describe() for f in self.applied) or "nothing"
        raise FaultError(f"no applied {name} on {target or 'any node'} {params or ''} to heal (applied: {applied})")

    def heal_crashes(self, nodes: list[str], *, rejoin: bool = True) -> str:
        """Power several crashed nodes on together (a whole cluster after a power cut); returns what recovery did.
        rejoin=False powers them on and starts nothing (a test then starts their stacks as it needs)."""
        crashed = [f for f in self.applied if f.name == "crash" and f.target in nodes]
        for f in crashed:
            self.heal_log.append((f, self.mark("heal", f)))
        if rejoin:
            recovery = self.lab.restart_nodes(nodes)
        else:
            for n in nodes:
                self.lab.provider.restart(n)
            recovery = f"{', '.join(nodes)} powered on, nothing started"
        self.applied = [f for f in self.applied if f not in crashed]
        return recovery

    def windows(self, since: float, until: float) -> list[tuple[str, str, float, float | None]]:
        """(label, node, time, next boundary) per fault, and per heal before `until` (a failback after a heal is
        the heal's outage, `heal:crash`); one pseudo-fault for a trial without faults."""
        if not self.fault_log:
            return [("none", "-", since, None)]
        marks = [(at, f.label, f.target) for f, at in self.fault_log]
        marks += [(at, f"heal:{f.label}", f.target) for f, at in self.heal_log if at < until]
        marks.sort()
        marks = marks[[m[1].startswith("heal:") for m in marks].index(False) :]  # from the first fault on
        return [
            (lbl, node, at, marks[i + 1][0] if i + 1 < len(marks) else None) for i, (at, lbl, node) in enumerate(marks)
        ]

    def _record_quorum(self, h: History, since: float) -> None:
        """Each node's quorum transitions in the trial (from its start: a crash trial's wait begins before its fault)
        go to the report, timed from the first fault, and beside the history."""
        origin = self.fault_at or since
        found = quorum_transitions(h, h.ops[0].time)
        rows = [{"trial": self.name, "at_ms": round((tr["time"] - origin) * 1000), **tr} for tr in found]
        self.lab.report.quorum += rows
        (self.dir / "quorum-transitions.json").write_text(json.dumps(rows, indent=1) + "\n")

    def _stop_workload(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def verify(self) -> dict:
        log = self.dir / "verify.out"
        p = self.lab.provider.spawn(
            self.lab.client, [sys.executable, "-m", "lab.workload.runner", "--verify", str(self.cfg_path)], log=log
        )
        try:
            rc = p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            raise AssertionError(f"reading back writes and messages timed out: {log.read_text()[-800:]}") from None
        if rc != 0:
            raise AssertionError(f"reading back writes and messages failed (rc {rc}): {log.read_text()[-1500:]}")
        return json.loads(log.read_text().strip().splitlines()[-1])

    def finish(
        self,
        *,
        bounds_ms: dict[str, int] | None = None,
        expect_split_brain: bool = False,
        settle_avoid: str | None = None,
        membership_change: bool = False,
    ) -> TrialResult:
        """Stop the load, read back what survived, and turn the history into events and checks."""
        placed = self.lab.settle(avoid=settle_avoid)
        self.clients_back()  # so that a gap has an end
        self._stop_workload()
        self.observer.stop()
        return self._judge(self.verify(), placed, bounds_ms or {}, expect_split_brain, membership_change)

    def finish_unrecovered(
        self, reason: str, *, bounds_ms: dict[str, int] | None = None, membership_change: bool = False
    ) -> TrialResult:
        """The system did not come back (`reason`: the wait that gave up): stop the load and judge what was recorded
        up to now, as `finish` does, so the report still says what each fault cost (an outage still open at the end
        counts to the end), where VIPs and mounts were doubled, what quorum did; what survived is read back if the
        services answer, and no service is placed anywhere. Then the faults still applied are healed."""
        self._stop_workload()
        self.observer.stop()
        self.lab.report.checks.append(Check(f"{self.name}: recovery", False, reason))
        try:
            survived = self.verify()
        except AssertionError as exc:  # the services may not answer: what the read-back said last (its log has it all)
            said = [ln for ln in str(exc).splitlines() if ln.strip()]
            self.lab.report.checks.append(Check(f"{self.name}: read-back", False, said[-1] if said else "failed"))
            survived = {}
        result = self._judge(survived, {}, bounds_ms or {}, False, membership_change)
        self._undo_faults("it did not recover")  # judged as it was; the lab is left without the faults
        return result

    def _judge(
        self,
        survived: dict,
        placed: dict[str, str],
        bounds_ms: dict[str, int],
        expect_split_brain: bool,
        membership_change: bool,
    ) -> TrialResult:
        h = self.history()
        prefix = f"{self.name}: "
        since = self.fault_at or h.ops[0].time
        pb, ctx = self.lab.playbook, self.lab.ctx
        tm = timing(
            self, h, since, placed, bounds_ms, expect_split_brain=expect_split_brain,
            membership_change=membership_change,
        )  # fmt: skip
        outages, events, checks, floors = tm.outages, tm.events, tm.checks, tm.floors
        for svc, ids in survived.get("present", {}).items():
            c = lost_writes(h, set(ids), service=svc)
            checks.append(Check(prefix + c.name, c.passed, c.detail))
        if "drained" in survived and self.cfg.amqp:
            # The consumer paused before the first fault (and stays paused to the end unless a test lifts it): the
            # backlog held at the fault must have been there (else nothing was at stake) and come back after it.
            held = self.held_backlog  # 0: no fault through fault() (a hand run), or no AMQP
            c = lost_messages(h, set(survived["drained"]), service=self.cfg.amqp.service, backlog=held)
            checks.append(Check(prefix + c.name, c.passed, c.detail))
        if "api_drained" in survived and self.cfg.http:  # the API's publishes, one per acknowledged write
            c = lost_api_messages(h, set(survived["api_drained"]), service=self.cfg.http.service)
            checks.append(Check(prefix + c.name, c.passed, c.detail))
        if self.cfg.image and self.fault_at:  # the image uploaded before the fault, whole after it
            c = image_intact(h, self.cfg.image.service, since)
            checks.append(Check(prefix + c.name, c.passed, c.detail))
        checks.append(Check(prefix + "observer-coverage", *self.observer.coverage(h, since)))
        # Split-brain evidence: VIPs on 2+ nodes, and (where there are shared disks) double mounts.
        evidence = [vip_holders(h, transient=pb.VIP_HANDOVER_SAMPLES)]
        evidence += [double_mounts(h)] if self.lab.provider.shared_disks() else []
        if self.observer.quorum_nodes:  # Pacemaker topologies: corosync-quorumtool -s per node, in the history
            opts = self.lab.opts
            # a second current quorate partition is split-brain evidence; a node stays on a superseded ring at most
            # until its corosync forms the new membership (token + consensus), seen up to one call's timeout late
            stale_s = bounds.membership_ms(opts) / 1000 + self.observer.quorum_call_timeout_s
            evidence.append(quorum_partitions(h, stale_s=stale_s, since=since))
            # the policy the cluster ran with (a test may set another than the scenario's for its trial)
            policy = (ctx.ask(LIVE_POLICY) or "").strip() or opts.no_quorum_policy
            c = resources_in_quorum(h, no_quorum_policy=policy, grace_s=pb.recovery_deadline_s(ctx))
            checks.append(Check(prefix + c.name + f" (no-quorum-policy={policy})", c.passed, c.detail))
            self._record_quorum(h, since)
        if expect_split_brain:
            # detected in the fault's window (from the first fault to its heal, else the end), and only then; the
            # evidence checks themselves are recorded as found, not judged: the split is what this trial expects
            healed = min((at for _, at in self.heal_log), default=None)
            sb = split_brain_in_window(
                h, since, healed, transient=pb.VIP_HANDOVER_SAMPLES, mounts=bool(self.lab.provider.shared_disks()),
                outlive_s=pb.recovery_deadline_s(ctx),  # once healed, the cluster resolves it within a recovery
            )  # fmt: skip
            checks.append(Check(prefix + "checkers detect the split-brain", sb.passed, sb.detail))
            self.lab.report.notes += [f"{prefix}{c.name} (expected to fail here): {c.detail}" for c in evidence]
        else:
            checks += [Check(prefix + c.name, c.passed, c.detail) for c in evidence]
        checks += [Check(prefix + c.name, c.passed, c.detail) for c in pb.audits(ctx)]
        self.lab.report.events += events
        self.lab.report.checks += checks
        h.dump(self.dir / MERGED)
        if floors:  # how each floor was made, so a test can check it against the history (tests/unit/test_floors.py)
            (self.dir / FLOORS).write_text(json.dumps(floors, indent=1) + "\n")
        return TrialResult(h, outages, checks, events, self.fault_at, placed)
