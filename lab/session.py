"""A Lab: scenario + provider + provisioning + trials (lab/trial.py). The one orchestration, used by the CLI,
schedules and the pytest fixtures alike. A lab is named after its scenario file unless `lab=` names it: two
copies of one scenario run side by side under two names."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING

from lab import evidence, progress, registry
from lab.pacemaker_view import PacemakerView
from lab.providers import ProviderError, choose, make_provider
from lab.report import Report
from lab.report_html import write_html
from lab.scenario import ClusterOptions, Scenario, load_scenario, renamed
from lab.targets import Live
from lab.trial import Trial, TrialResult
from provision.context import Context
from provision.playbook import playbook_for
from provision.secrets import load_or_create

if TYPE_CHECKING:
    from testinfra.host import Host

REPO = Path(__file__).resolve().parent.parent
__all__ = ["Lab", "Trial", "TrialResult", "only_services"]


class Lab:
    def __init__(
        self,
        scenario: str | Scenario,
        provider: str | None = None,
        profile: str | None = None,
        reports_dir: Path | None = None,
        *,
        lab: str | None = None,
        seed: int | None = None,
    ) -> None:
        loaded = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        self.scenario = renamed(loaded, lab)
        self.profile = profile or os.environ.get("LAB_PROFILE") or self.scenario.default_profile
        self.scenario.options(self.profile)  # unknown profile: fail now, naming the known ones
        self.only = only_services(self.scenario, os.environ.get("LAB_SERVICES", ""))
        self.playbook = playbook_for(self.scenario)
        if self.only and not self.playbook.HONOURS_LAB_SERVICES:
            raise ProviderError(
                "LAB_SERVICES narrows ch. 3's services only (active/passive, and ch. 3's half of an API scenario); "
                f"{self.scenario.path} runs all its services: unset it"
            )
        refuses = getattr(self.playbook, "refuses_services", None)  # asked only when LAB_SERVICES narrows
        refused = refuses(self.scenario, self.only) if self.only and refuses else None
        if self.only and refused:
            raise ProviderError(f"LAB_SERVICES={','.join(self.only)}: {refused}")
        self.provider_name, self.provider_reason = choose(provider)
        self.provider = make_provider(self.provider_name, self.scenario)
        self.started = time.time()
        # every random choice of a run (random:ROLE targets, chaos schedules) comes from this one seed
        self.seed = seed if seed is not None else int(self.started * 1000) % 2**31
        self.rng = random.Random(self.seed)
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
            # the cluster under test, where the scenario holds two (ch. 4: the API nodes'); "" for its one cluster
            cluster = getattr(self.playbook, "cluster_under_test", lambda _: "")(self.scenario)
            self._ctx = Context(self.scenario, self.profile, self.provider, secrets, only=self.only, cluster=cluster)
        return self._ctx

    def timed(self, phase: str) -> _Timer:
        return _Timer(self.report.timings_s, phase)

    def _needs(self) -> None:
        """A scenario part the provider cannot build fails before anything is built (one line, naming the fix)."""
        unbuilt = getattr(self.playbook, "unbuilt_on", lambda _p, _s: None)(self.provider_name, self.scenario)
        if unbuilt:
            raise ProviderError(f"{self.scenario.path}: topology {self.scenario.topology}: {unbuilt}: run it with "
                                "--provider netns")  # fmt: skip
        needs = getattr(self.playbook, "needs_shared_directory", lambda _: None)(self.scenario)
        if needs and not self.provider.shared_directories:
            raise ProviderError(
                f"{self.scenario.path}: {needs} needs a directory every node shares, which the {self.provider_name} "
                f"provider does not build yet: run it with --provider netns, or remove {needs.split()[0]} (its port "
                "then goes to the API stand-in)"
            )

    def up(self) -> None:
        from lab import handrun

        self._needs()
        with self.timed("up"), progress.step(f"up {self.scenario.name} ({self.provider_name})"):
            handrun.forget(self)  # `up` rebuilds a lab that exists: its recording and fault ledger go with it
            self.provider.up()
        registry.record(self.scenario, self.provider_name, self.profile, fresh=True)

    def provision(self) -> None:
        self._needs()
        with progress.step(f"provision {self.scenario.name} ({self.profile})"):
            with self.timed("provision"):
                self.playbook.converge(self.ctx)
            # the parts the playbook timed itself (a schema migration, a stack's start), beside the whole
            self.report.timings_s |= {f"provision:{k}": round(v, 2) for k, v in self.ctx.measured.items()}
            progress.note("versions and memory")  # dpkg-query and a /proc walk on every node: seconds under TCG
            self.report.memory_kib = self.memory()
            self.report.versions = self.versions()
        self.report.notes += self.playbook.notes(self.ctx)
        self.report.notes += self.provider.notes() if hasattr(self.provider, "notes") else []
        registry.record(self.scenario, self.provider_name, self.profile, provisioned=True)
        evidence.snapshot(self, "start")  # the cluster as provisioned: the bundle's first stage

    def down(self) -> None:
        from lab import handrun

        with self.timed("down"), progress.step(f"down {self.scenario.name} ({self.provider_name})"):
            handrun.forget(self)  # a recorder of this lab stops first: its workload talks to the nodes
            self.provider.down()
        registry.forget(self.scenario.name, self.provider_name)

    # ------------------------------------------------------------------ what faults use (lab/faults.py FaultEnv)
    def live(self) -> Live:
        return Live(self.scenario, self.provider.is_running, self.pcmk.group_holders, self.provider.addresses, self.rng)

    @property
    def pcmk(self) -> PacemakerView:
        """What the Pacemaker topologies read back from the cluster (CIB, crm_mon, logs, bounds)."""
        return PacemakerView(self)

    def start_service(self, node: str, service: str) -> None:
        self.playbook.start_service(self.ctx, node, service)

    def memory(self) -> dict[str, dict[str, int]]:
        """Per node: RSS summed over its processes (double-counts shared memory), PSS (shares a page with other
        nodes' mappers too) and `resident`, its distinct resident pages (each counted once)."""
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

    @property
    def opts(self) -> ClusterOptions:
        return self.scenario.options(self.profile)

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

    def rejoin(self, node: str) -> None:
        """Start what a running node's init system would start after a reboot (after a reset)."""
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
        """report.json, the run's evidence (its last stage, the daemons' logs, bundle.json) and report.html."""
        self.report.duration_s = round(time.time() - self.started, 1)
        if self.provider.is_up():  # evidence first: its timing and any errors land in report.json
            evidence.end(self)
        path = self.report.write(self.run_dir)
        try:
            write_html(self.run_dir)
        except Exception as exc:  # the verdict stands without its page; say why there is none
            self.report.notes.append(f"report.html not written: {type(exc).__name__}: {exc}")
            path = self.report.write(self.run_dir)
        return path


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
