"""What a Pacemaker topology reads back from its cluster: the CIB, crm_mon, pacemaker.log, group placement and the
bounds the configured timeouts give. Kept out of Lab, which is the same for every topology (`lab.pcmk`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab import bounds
from lab.checks.placement import group_nodes
from lab.scenario import ScenarioError
from provision import pacemaker

if TYPE_CHECKING:
    from lab.session import Lab


class PacemakerView:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    def cib_resources(self) -> str:
        xml = self.lab.ask("cibadmin -Q --scope resources")
        if xml is None:
            raise AssertionError("no cluster node answers cibadmin -Q")
        return xml

    def failover_bound_ms(self, service: str, *, stop_first: bool = False) -> int:
        group = self.lab.scenario.services[service].group
        if group is None:
            fix = f"Pacemaker runs {service} as a group here: name it, e.g. `group: g_{service}`"
            raise ScenarioError(self.lab.scenario.path, f"services.{service}.group", "not set", fix)
        return bounds.failover_bound_ms(self.lab.opts, self.cib_resources(), group, stop_first=stop_first)

    def pacemaker_log(self, *nodes: str) -> list[str]:
        lines: list[str] = []
        for n in nodes or self.lab.cluster_nodes:
            if self.lab.provider.is_running(n):
                lines += self.lab.provider.run(
                    n, f"cat {pacemaker.LOG}", timeout=30
                ).stdout.splitlines()
        return lines

    def crm_mon_xml(self, node: str | None = None) -> str:
        if node:
            return pacemaker.crm_mon_xml(self.lab.ctx, node) or ""
        return self.lab.ask("crm_mon -1 --output-as=xml") or ""

    def crm_mon_ops_xml(self, node: str) -> str:
        """crm_mon with its operations history (exec-times), as `node` sees it."""
        r = self.lab.provider.run(node, "crm_mon -1 -o --output-as=xml", timeout=15)
        if not r.ok:
            raise AssertionError(f"crm_mon -1 -o on {node}: exit {r.rc}: {r.stderr.strip()[-200:]}")
        return r.stdout

    def group_holders(self) -> dict[str, str | None]:
        """Pacemaker group -> the node running it whole now (no wait); empty without Pacemaker."""
        out: dict[str, str | None] = {}
        for nodes in self.lab.scenario.clusters.values():  # a lab of two clusters (ch. 4): each one's groups
            xml = self.lab.ctx.ask("crm_mon -1 --output-as=xml", nodes)
            out |= group_nodes(xml) if xml else {}
        return out
