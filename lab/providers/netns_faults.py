"""netns provider, faults: signals to a node's processes, its veths' link state on the fabric, and nftables
bridge tables in the fabric (one per fault)."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from lab.providers.base import ProviderError, Unsupported
from lab.providers.common import bridge_filter, kill_command, sh, signal_pid, starttime, stop_service_via
from lab.providers.netns_boot import NetnsBoot
from lab.providers.netns_node import DOWN_S
from lab.providers.netns_observe import NetnsObservation
from lab.wait import until


class NetnsFaults(NetnsBoot, NetnsObservation):
    def crash(self, node: str) -> None:
        """Every process dies at once and the links go dark, as when power is cut."""
        self._links(node, "down")  # first: the network namespace would keep answering on its VIPs
        pid = self._init_pid(node)
        if pid:
            signal_pid(pid, signal.SIGKILL)  # SIGKILL of a PID namespace's init kills every process in it
            until(
                lambda: starttime(pid) is None,
                timeout=DOWN_S,
                what=f"{node}'s init {pid} to die",
                seen=lambda: Path(f"/proc/{pid}/status").read_text()[:200] if Path(f"/proc/{pid}").exists() else "",
            )
        self._state["init_pids"].pop(node, None)  # never signal or enter that PID again
        self._save_state()

    def restart(self, node: str) -> None:
        """Boot a crashed node again: fresh namespaces, its own addresses only (no stale VIP)."""
        if self._init_alive(node):
            raise ProviderError(f"{node} is still running: crash it before restarting")
        self._configure_addresses(node)
        self._start_init(node)
        until(
            lambda: self._ready(node),
            timeout=10,
            what=f"{node}'s namespaces to be ready after restart",
            seen=lambda: f"init pid {self._state['init_pids'].get(node)}",
        )

    def _links(self, node: str, state: str) -> None:
        for net_name in self.scenario.nodes[node].addresses:
            sh("ip", "-n", self.fabric, "link", "set", self.veth(node, net_name), state)

    def freeze(self, node: str) -> None:
        """SIGSTOP every process of the node (repeated until no new process appears)."""
        stopped: set[int] = set()
        for _ in range(20):
            new = [p for p in self.pids(node) if p not in stopped]
            if not new:
                return
            for p in new:
                signal_pid(p, signal.SIGSTOP)
                stopped.add(p)
        raise ProviderError(f"{node}: processes kept appearing while freezing it")

    def thaw(self, node: str) -> None:
        for p in self.pids(node):
            signal_pid(p, signal.SIGCONT)

    def kill_service(self, node: str, process: str) -> None:
        r = self.run(node, kill_command(process), timeout=10)
        if r.rc != 0:
            raise ProviderError(f"{node}: no process named {process} to kill (pkill rc {r.rc})")

    def stop_service(self, node: str, process: str, timeout: float = 30.0) -> None:
        stop_service_via(self, node, process, timeout)

    def cut(self, node: str, network: str) -> None:
        if network not in self.scenario.nodes[node].addresses:
            raise ProviderError(f"{node} has no NIC on network {network}")
        sh("ip", "-n", self.fabric, "link", "set", self.veth(node, network), "down")
        self._state["cut"].append([node, network])
        self._save_state()

    def restore(self, node: str, network: str) -> None:
        sh("ip", "-n", self.fabric, "link", "set", self.veth(node, network), "up")
        self._state["cut"] = [c for c in self._state["cut"] if c != [node, network]]
        self._save_state()

    def reset(self, node: str) -> None:
        """A hardware reset: the node dies and boots again at once, with none of its services running."""
        self.crash(node)
        self.restart(node)

    def poweroff(self, node: str) -> None:
        raise Unsupported(
            f"poweroff {node}: a netns node has no init system to shut down in order; use crash (power cut) "
            "or stop_service, or run it with --provider libvirt"
        )

    def port(self, node: str, network: str) -> str:
        """The node's port on the network's bridge (where partitions and packet loss filter)."""
        if network not in self.scenario.nodes[node].addresses:
            raise ProviderError(f"{node} has no NIC on network {network}")
        return self.veth(node, network)

    def filter_add(self, name: str, rules: Sequence[str]) -> None:
        """One nftables table (bridge family, forward hook) in the fabric, holding one fault's rules."""
        script = bridge_filter(f"halab_{name}", rules)
        sh("ip", "netns", "exec", self.fabric, "nft", "delete", "table", "bridge", f"halab_{name}", check=False)
        p = subprocess.run(
            ["ip", "netns", "exec", self.fabric, "nft", "-f", "-"], input=script, text=True, capture_output=True
        )
        if p.returncode:
            raise ProviderError(f"nft rejected the rules: {p.stderr.strip()}\n{script}")
        self._state["filters"] = sorted({*self._state.get("filters", []), name})
        self._save_state()

    def filter_remove(self, name: str) -> None:
        sh("ip", "netns", "exec", self.fabric, "nft", "delete", "table", "bridge", f"halab_{name}", check=False)
        self._state["filters"] = [f for f in self._state.get("filters", []) if f != name]
        self._save_state()

    def heal(self) -> None:
        """Undo every filter (partitions, packet loss) and cut NIC: the lab's network back as built."""
        for name in list(self._state.get("filters", [])):
            self.filter_remove(name)
        for node, net in list(self._state["cut"]):
            self.restore(node, net)
