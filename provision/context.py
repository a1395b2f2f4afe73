"""What every role module gets: the scenario, the chosen profile, the provider, the secrets."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from lab.providers.base import Provider, ProviderError
from lab.scenario import ClusterOptions, Scenario
from provision.secrets import Secrets

TEMPLATES = Path(__file__).resolve().parent / "templates"
_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def script_command(script: Path, *args: str) -> str:
    """A shell command that runs one of provision/files' Python scripts on a node without copying it there; its
    secrets go on stdin, never among `args` (a command line is visible to every process of the node)."""
    return f"python3 -c {shlex.quote(script.read_text())} {' '.join(shlex.quote(a) for a in args)}"


def render(template: str, **values: object) -> str:
    return _env.get_template(template).render(**values)


@dataclass
class Context:
    scenario: Scenario
    profile: str
    provider: Provider
    secrets: Secrets
    # Services to provision and test (LAB_SERVICES); None: every service the scenario has.
    only: tuple[str, ...] | None = None
    # What this lab measured of itself (e.g. how long its stack took to come online): deadlines that the timers
    # alone cannot give, on a provider ten times slower than another (TCG), scale from these.
    measured: dict[str, float] = field(default_factory=dict)
    # The corosync cluster this context addresses (Scenario.clusters' key): "" for a scenario's one cluster; a
    # playbook of two clusters (ch. 4) works on the other with `dataclasses.replace(ctx, cluster=...)`.
    cluster: str = ""

    @property
    def opts(self) -> ClusterOptions:
        return self.scenario.options(self.profile)

    @property
    def cluster_nodes(self) -> list[str]:
        return [n.name for n in self.scenario.nodes_with_role("pacemaker") if n.cluster == self.cluster]

    def ask(self, cmd: str, nodes: list[str] | None = None, timeout: float = 15) -> str | None:
        """stdout of `cmd` on the first of `nodes` (default: the cluster nodes) that runs it
        successfully; a crashed node cannot."""
        for n in nodes if nodes is not None else self.cluster_nodes:
            try:
                r = self.provider.run(n, cmd, timeout=timeout)
            except ProviderError:
                continue
            if r.ok:
                return r.stdout
        return None

    @property
    def drbd(self) -> bool:
        """Real DRBD where the provider has a kernel module for it; a shared-disk stand-in elsewhere."""
        return getattr(self.provider, "has_drbd", False)
