"""A Lab: scenario + provider + provisioning + trials. The one orchestration, used by the CLI and
by the pytest fixtures alike.

A trial runs the workload and the observer, applies faults (recorded in the history as nemesis
ops), and on finish turns the history into events (downtime per service) and checks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lab import bounds
from lab.checks.availability import Outage, downtime_check, outage
from lab.checks.base import Check
from lab.checks.durability import lost_messages, lost_writes
from lab.checks.split_brain import double_mounts, vip_holders, vip_timeline
from lab.history import INFO, History, JsonlRecorder
from lab.observer import Observer
from lab.providers import ProviderError, choose, make_provider
from lab.report import Event, Report
from lab.scenario import ClusterOptions, Scenario, load_scenario
from lab.wait import until
from provision import pacemaker
from provision.context import Context
from provision.playbook import playbook_for
from provision.secrets import load_or_create

if TYPE_CHECKING:
    from testinfra.host import Host

# The whole trial's history, merged, written next to the per-client files when the trial finishes.
MERGED = "history.jsonl"
# The ops whose acknowledgement means "the service worked" (probes are judged apart).
WORK_FS = ("write", "publish")
# Starting the Python workload process (imports pymysql, pika) on a busy 2-core machine.
RUNNER_START_S = 30
REPO = Path(__file__).resolve().parent.parent
# Which process is "the service" for kill_service, per service name.
SERVICE_PROCESS = {
    "mysql": "mariadbd",
    "galera": "mariadbd",
    "rabbitmq": "beam.smp",
    "corosync": "corosync",
    "pacemaker": "pacemakerd",
}


class Lab:
    def __init__(
        self,
        scenario: str | Scenario,
        provider: str | None = None,
        profile: str | None = None,
        reports_dir: Path | None = None,
    ) -> None:
        self.scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        self.profile = profile or os.environ.get("LAB_PROFILE") or self.scenario.default_profile
        self.scenario.options(self.profile)  # unknown profile: fail now, naming the known ones
        self.only = only_services(self.scenario, os.environ.get("LAB_SERVICES", ""))
        self.playbook = playbook_for(self.scenario)
        if self.only and not getattr(self.playbook, "HONOURS_LAB_SERVICES", False):
            raise ProviderError(
                f"LAB_SERVICES narrows active/passive runs only; {self.scenario.path} runs all its services: unset it"
            )
        self.provider_name, self.provider_reason = choose(provider)
        self.provider = make_provider(self.provider_name, self.scenario)
        self.started = time.time()
        run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.started))
        base = reports_dir or Path(os.environ.get("HALAB_REPORTS_DIR", REPO / "reports"))
        self.run_dir = base / self.scenario.name / run_id
        self.report = Report(
            scenario=self.scenario.name,
            provider=self.provider_name,
            profile=self.profile,
            started_at=self.started,
            duration_s=0.0,
            versions={},
            events=[],
            checks=[],
            notes=[f"provider chosen: {self.provider_reason}"],
        )
        self._ctx: Context | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def ctx(self) -> Context:
        if self._ctx is None:
            secrets = load_or_create(self.provider.state_dir)
            self._ctx = Context(self.scenario, self.profile, self.provider, secrets, only=self.only)
        return self._ctx

    def timed(self, phase: str) -> _Timer:
        return _Timer(self.report.timings_s, phase)

    def up(self) -> None:
        with self.timed("up"):
            self.provider.up()

    def provision(self) -> None:
        with self.timed("provision"):
            self.playbook.converge(self.ctx)
        self.report.memory_kib = self.memory()
        self.report.versions = self.versions()
        self.report.notes += self.playbook.notes(self.ctx)
        self.report.notes += self.provider.notes() if hasattr(self.provider, "notes") else []

    def down(self) -> None:
        with self.timed("down"):
            self.provider.down()

    def memory(self) -> dict[str, dict[str, int]]:
        """Per node: RSS summed over its processes (double-counts shared memory) and PSS (does not)."""
        return {n: self.provider.memory_kib(n) for n in self.scenario.nodes if self.provider.is_running(n)}

    @property
    def cluster_nodes(self) -> list[str]:
        return self.ctx.cluster_nodes

    @property
    def client(self) -> str:
        return self.scenario.nodes_with_role("client")[0].name

    def versions(self) -> dict[str, str]:
        node = next(n for n in self.scenario.nodes if self.provider.is_running(n))
        r = self.provider.run(node, "dpkg-query -W -f='${Package} ${Version}\\n' " + " ".join(self.playbook.PACKAGES))
        return dict(line.split(" ", 1) for line in r.stdout.splitlines() if " " in line)

    def ask(self, cmd: str, timeout: float = 15) -> str | None:
        return self.ctx.ask(cmd, timeout=timeout)

    def cib_resources(self) -> str:
        xml = self.ask("cibadmin -Q --scope resources")
        if xml is None:
            raise AssertionError("no cluster node answers cibadmin -Q")
        return xml

    @property
    def opts(self) -> ClusterOptions:
        return self.scenario.options(self.profile)

    def failover_bound_ms(self, service: str, *, stop_first: bool = False) -> int:
        group = self.scenario.services[service].group
        return bounds.failover_bound_ms(self.opts, self.cib_resources(), group, stop_first=stop_first)

    def pacemaker_log(self, *nodes: str) -> list[str]:
        lines: list[str] = []
        for n in nodes or self.cluster_nodes:
            if self.provider.is_running(n):
                lines += self.provider.run(n, "cat /var/log/pacemaker/pacemaker.log", timeout=30).stdout.splitlines()
        return lines

    def crm_mon_xml(self, node: str | None = None) -> str:
        if node:
            return pacemaker.crm_mon_xml(self.ctx, node) or ""
        return self.ask("crm_mon -1 --output-as=xml") or ""

    def status(self) -> str:
        return self.playbook.status(self.ctx)

    def settle(
        self, *, on: str | None = None, avoid: str | None = None, timeout: float | None = None
    ) -> dict[str, str]:
        """Wait until the system runs as configured again; return where things run (e.g. group -> node)."""
        return self.playbook.settle(self.ctx, on=on, avoid=avoid, timeout=timeout)

    def restart_node(self, node: str) -> None:
        """Power a crashed node on again and let it rejoin (what its init system would start)."""
        self.provider.restart(node)
        self.playbook.restart_node(self.ctx, node)

    def restart_nodes(self, nodes: list[str]) -> str:
        """Power several crashed nodes on together (a whole cluster after a power cut); returns what the
        playbook's recovery did."""
        for n in nodes:
            self.provider.restart(n)
        return self.playbook.restart_nodes(self.ctx, nodes)

    @property
    def hosts(self) -> dict[str, Host]:
        """A testinfra `host` per node, over this lab's provider."""
        from lab.testinfra_backend import hosts

        return hosts(self.provider)

    def trial(self, name: str) -> Trial:
        return Trial(self, name)

    def write_report(self) -> Path:
        self.report.duration_s = round(time.time() - self.started, 1)
        return self.report.write(self.run_dir)


def only_services(scenario: Scenario, value: str) -> tuple[str, ...] | None:
    """LAB_SERVICES=a,b: run only those of the scenario's services (e.g. MySQL alone where RabbitMQ's Erlang is too
    slow, as under TCG); empty: all of them."""
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    unknown = [n for n in names if n not in scenario.services]
    if unknown:
        raise ProviderError(
            f"LAB_SERVICES names {', '.join(unknown)}, not services of {scenario.path}: use some of "
            f"{', '.join(scenario.services)} (or leave LAB_SERVICES empty for all)"
        )
    return names or None


class _Timer:
    def __init__(self, into: dict[str, float], phase: str) -> None:
        self.into, self.phase = into, phase

    def __enter__(self) -> None:
        self.t0 = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        self.into[self.phase] = round(time.monotonic() - self.t0, 2)


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
        self.cfg_path = self.dir / "workload.json"
        self.cfg.write(self.cfg_path)
        self.nemesis = JsonlRecorder(self.dir / "nemesis.jsonl", "nemesis")
        vips = [str(v.address) for v in sc.vips.values()]
        self.observer = Observer(
            lab.provider, vips, list(lab.provider.shared_disks().values()), self.dir, lab.provider.observe_period_s
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.fault_at: float | None = None
        self.faults: list[tuple[str, str, float]] = []
        self.applied: list[tuple[str, str, dict[str, object]]] = []  # faults not healed yet
        self.groups_before: dict[str, str] = {}

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
        self._stop_workload()
        if self.observer._thread.is_alive():
            self.observer.stop()
        if exc_type is not None:
            self._undo_faults()

    def _undo_faults(self) -> None:
        """A test that failed half-way must not leave its fault for the next test: heal what is still applied,
        newest first, and say in the report what was undone."""
        for fault, target, kw in reversed(list(self.applied)):
            try:
                self.heal(fault, target, **kw)
                self.lab.report.notes.append(f"{self.name}: undid {fault} on {target} after the test failed")
            except Exception as exc:  # keep undoing the rest; the test's own failure is what pytest shows
                self.lab.report.notes.append(f"{self.name}: could not undo {fault} on {target}: {exc}")

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.groups_before = self.lab.settle()
        self.observer.start()
        self.proc = self.lab.provider.spawn(
            self.lab.client,
            [sys.executable, "-m", "lab.workload.runner", str(self.cfg_path)],
            log=self.dir / "workload.log",
        )
        until(
            lambda: (self.dir / "started").exists() or self.proc.poll() is not None,
            timeout=RUNNER_START_S,
            what="the workload runner to start",
            seen=lambda: (self.dir / "workload.log").read_text()[-500:],
        )
        self._runner_alive()
        # Baseline: every service answers before the fault, or the measurement would mean nothing.
        for svc in self.lab.playbook.services(self.lab.ctx):
            until(
                lambda s=svc: self._runner_alive() and self.history().select(service=s, type="ok", f=WORK_FS),
                timeout=self.lab.playbook.recovery_deadline_s(self.lab.ctx),
                what=f"a first acknowledged {svc} op before the fault",
                seen=lambda: (self.dir / "workload.log").read_text()[-800:],
            )

    def _runner_alive(self) -> bool:
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

    def mark(self, f: str, fault: str, target: str, **params: object) -> float:
        value = {
            "fault": fault,
            "target": target,
            **{k: v if isinstance(v, str | int | float | bool) else list(v) for k, v in params.items()},
        }  # type: ignore[call-overload]
        return self.nemesis.record(INFO, f, value).time

    def fault(self, fault: str, target: str, **kw: object) -> float:
        """Apply a fault (faults are data: a name, a target, parameters) and record when."""
        p = self.lab.provider
        at = self.mark("fault", fault, target, **kw)
        if fault == "crash":
            p.crash(target)
        elif fault == "freeze":
            p.freeze(target)
        elif fault == "kill_service":
            p.kill_service(target, SERVICE_PROCESS.get(str(kw["service"]), str(kw["service"])))
        elif fault == "stop_service":
            p.stop_service(target, SERVICE_PROCESS.get(str(kw["service"]), str(kw["service"])))
        elif fault == "partition":
            p.partition(str(kw["network"]), [target], list(kw["others"]), one_way=bool(kw.get("one_way", False)))
        elif fault == "cut":
            p.cut(target, str(kw["network"]))
        elif fault == "standby":
            self.lab.provider.run(target, f"crm node standby {target}", check=True, timeout=60)
        else:
            raise ValueError(f"unknown fault {fault!r}")
        self.applied.append((fault, target, dict(kw)))
        self.fault_at = self.fault_at or at
        # "kill_service:haproxy" says more in the report, and lets a playbook pick the right floor
        self.faults.append((f"{fault}:{kw['service']}" if "service" in kw else fault, target, at))
        return at

    def heal(self, fault: str, target: str, **kw: object) -> float:
        p = self.lab.provider
        undo = {"kill_service": ("kill_service", "stop_service")}.get(fault, (fault,))
        self.applied = [
            a
            for a in self.applied
            if not (a[0] in undo and a[1] == target and all(a[2].get(k) == v for k, v in kw.items()))
        ]
        at = self.mark("heal", fault, target, **kw)
        if fault == "crash":
            self.lab.restart_node(target)
        elif fault == "freeze":
            p.thaw(target)
        elif fault == "cut":
            p.restore(target, str(kw["network"]))
        elif fault == "partition":
            p.heal()
        elif fault in ("kill_service", "stop_service"):
            self.lab.playbook.start_service(self.lab.ctx, target, str(kw["service"]))
        elif fault == "standby":
            p.run(target, f"crm node online {target}", check=True, timeout=60)
        return at

    def heal_crashes(self, nodes: list[str]) -> str:
        """Power several crashed nodes on together (a whole cluster after a power cut); returns what recovery did."""
        for n in nodes:
            self.mark("heal", "crash", n)
        recovery = self.lab.restart_nodes(nodes)
        self.applied = [a for a in self.applied if not (a[0] == "crash" and a[1] in nodes)]
        return recovery

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
        # Let every client show it works again before stopping it (so a gap has an end).
        t_settled = time.time()
        for svc in self.lab.playbook.services(self.lab.ctx):
            until(
                lambda s=svc: (
                    self._runner_alive() and self.history().select(service=s, type="ok", f=WORK_FS, since=t_settled)
                ),
                # a group can look whole while a pending recovery is about to restart it
                timeout=self.lab.playbook.recovery_deadline_s(self.lab.ctx),
                what=f"an acknowledged {svc} op after recovery",
                seen=lambda: (self.dir / "workload.log").read_text()[-800:],
            )
        self._stop_workload()
        self.observer.stop()
        survived = self.verify()
        h = self.history()
        bounds_ms = bounds_ms or {}
        outages: dict[str, Outage] = {}
        events: list[Event] = []
        prefix = f"{self.name}: "
        checks: list[Check] = []
        since = self.fault_at or h.ops[0].time
        fault, target, _ = self.faults[0] if self.faults else ("none", "-", since)
        pb, ctx = self.lab.playbook, self.lab.ctx
        for svc in pb.services(ctx):
            # a gap longer than the history's resolution is an outage even when no op failed (hung requests)
            o = outage(h, svc, since=since, fs=WORK_FS, max_gap_s=self.resolution_ms / 1000)
            outages[svc] = o
            probe = outage(h, svc, since=since, fs=("connect",))
            ev = Event.from_outage(
                fault, target, since, o, recovered_on=pb.recovered_on(ctx, svc, placed), bound_ms=bounds_ms.get(svc)
            )
            ev.probe_gap_ms = probe.downtime_ms
            ev.vip = pb.vip_of(ctx, svc)
            if ev.vip:
                timeline = vip_timeline(h, ev.vip)
                before = [nodes for t, nodes in timeline if t <= since]
                ev.vip_from = list(before[-1]) if before else None
                ev.vip_to = list(timeline[-1][1]) if timeline else None
            ev.floor_ms = pb.floor_ms(ctx, svc, self.groups_before, placed, membership_change, self.faults)
            events.append(ev)
            if svc in bounds_ms:
                c = downtime_check(o, bounds_ms[svc])
                checks.append(
                    Check(
                        f"{prefix}{c.name} within {bounds_ms[svc]} ms",
                        c.passed,
                        f"{c.detail}; VIP TCP probe gap {probe.downtime_ms} ms; bound from configured timeouts",
                    )
                )
        for svc, ids in survived.get("present", {}).items():
            c = lost_writes(h, set(ids), service=svc)
            checks.append(Check(prefix + c.name, c.passed, c.detail))
        if "drained" in survived and self.cfg.amqp:
            c = lost_messages(h, set(survived["drained"]), service=self.cfg.amqp.service)
            checks.append(Check(prefix + c.name, c.passed, c.detail))
        checks.append(Check(prefix + "observer-coverage", *self.observer.coverage(h, since)))
        # Split-brain evidence: VIPs on 2+ nodes, and (where there are shared disks) double mounts.
        evidence = [vip_holders(h)] + ([double_mounts(h)] if self.lab.provider.shared_disks() else [])
        if expect_split_brain:
            checks.append(
                Check(
                    prefix + "checkers detect the split-brain",
                    any(not c.passed for c in evidence),
                    "; ".join(f"{c.name}: {c.detail}" for c in evidence),
                )
            )
        else:
            checks += [Check(prefix + c.name, c.passed, c.detail) for c in evidence]
        checks += [Check(prefix + c.name, c.passed, c.detail) for c in pb.audits(ctx)]
        self.lab.report.events += events
        self.lab.report.checks += checks
        h.dump(self.dir / MERGED)
        return TrialResult(h, outages, checks, events, self.fault_at, placed)
