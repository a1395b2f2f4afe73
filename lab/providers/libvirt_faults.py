"""libvirt provider, faults from the host through libvirt-python: crash = destroy (power cut), poweroff = ACPI,
reset, freeze/thaw = suspend/resume, cut/restore = the NIC's link state (updateDeviceFlags), partitions and packet
loss = nftables bridge tables on the taps (one per fault); kill/stop a service in the guest."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from lab.providers.base import ProviderError
from lab.providers.common import bridge_filter, kill_command, stop_service_via
from lab.providers.libvirt_commands import LibvirtCommands
from lab.providers.libvirt_node import BOOT_S
from lab.wait import until


class LibvirtFaults(LibvirtCommands):
    def crash(self, node: str) -> None:
        """Power cut: libvirt destroys the domain; its taps go with it."""
        self._vm_only(node, "crash")
        self.domain(node).destroy()
        self._forget(node)

    def poweroff(self, node: str) -> None:
        """The power button: ACPI shutdown, the guest's systemd stops its services in order, the domain goes off."""
        self._vm_only(node, "poweroff")
        dom = self.domain(node)
        dom.shutdown()
        until(
            lambda: not dom.isActive(),
            timeout=BOOT_S,
            interval=1,
            what=f"{node} to shut down after the ACPI power button",
            seen=lambda: f"domain state {dom.state()}",
        )
        self._forget(node)

    def reset(self, node: str) -> None:
        """Hardware reset: the guest reboots at once without shutting down (then rejoins like a restarted node)."""
        self._vm_only(node, "reset")
        self.domain(node).reset(0)
        self._forget(node)
        self._wait_ssh(node)
        self._prepare(node)

    def restart(self, node: str) -> None:
        """Power a crashed node on again and wait until it answers over SSH."""
        self._vm_only(node, "restart")
        dom = self.domain(node)
        if dom.isActive():
            raise ProviderError(f"{node} is still running: crash it before restarting")
        self._booting.add(node)
        try:
            dom.create()
            self._wait_ssh(node)
        finally:
            self._booting.discard(node)
        self._prepare(node)
        for cut_node, net in self._state.get("cut", []):  # a fresh domain's links are up: a pulled cable is not
            if cut_node == node:
                self._link(node, net, "down")

    def freeze(self, node: str) -> None:
        self._vm_only(node, "freeze")
        self.domain(node).suspend()

    def thaw(self, node: str) -> None:
        import libvirt

        self._vm_only(node, "thaw")
        dom = self.domain(node)
        if dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED:  # else it was fenced (powered off) meanwhile
            dom.resume()

    def kill_service(self, node: str, process: str) -> None:
        r = self.run(node, kill_command(process), timeout=15)
        if r.rc != 0:
            raise ProviderError(f"{node}: no process named {process} to kill (pkill rc {r.rc})")

    def stop_service(self, node: str, process: str, timeout: float = 30.0) -> None:
        stop_service_via(self, node, process, timeout)

    def _interface(self, node: str, network: str) -> ET.Element:
        """The domain's <interface> on `network` (its live XML: the tap name is only there)."""
        root = ET.fromstring(self.domain(node).XMLDesc(0))
        for iface in root.findall("./devices/interface"):
            src = iface.find("source")
            if src is not None and src.get("network") == self.network_name(network):
                return iface
        raise ProviderError(f"{node} has no NIC on libvirt network {self.network_name(network)}")

    def _link(self, node: str, network: str, state: str) -> None:
        import libvirt

        iface = self._interface(node, network)
        link = iface.find("link")
        if link is None:
            link = ET.SubElement(iface, "link")
        link.set("state", state)
        self.domain(node).updateDeviceFlags(ET.tostring(iface, encoding="unicode"), libvirt.VIR_DOMAIN_AFFECT_LIVE)

    def cut(self, node: str, network: str) -> None:
        if network not in self.scenario.nodes[node].addresses:
            raise ProviderError(f"{node} has no NIC on network {network}")
        self._vm_only(node, "cut")
        self._link(node, network, "down")
        self._state["cut"].append([node, network])
        self._save_state()

    def restore(self, node: str, network: str) -> None:
        self._link(node, network, "up")
        self._state["cut"] = [c for c in self._state["cut"] if c != [node, network]]
        self._save_state()

    def _tap(self, node: str, network: str) -> str:
        if node in self.client_nodes:
            i = list(self.scenario.nodes[node].addresses).index(network)
            return f"hl{i}-{node}"[:15]
        target = self._interface(node, network).find("target")
        dev = target.get("dev") if target is not None else None
        if not dev:
            raise ProviderError(f"{node}'s NIC on {network} has no tap (is the domain running?)")
        return dev

    def port(self, node: str, network: str) -> str:
        """The node's tap (a client's veth) on the network's libvirt bridge: where partitions and loss filter."""
        if network not in self.scenario.nodes[node].addresses:
            raise ProviderError(f"{node} has no NIC on network {network}")
        return self._tap(node, network)

    def filter_add(self, name: str, rules: Sequence[str]) -> None:
        """One nftables table per fault (bridge family) where the bridges are: the lab's libvirt namespace, or
        the root namespace with a host's own libvirtd (hence the lab's name in the table's)."""
        table = f"{self.nft_table}_{name}"
        subprocess.run([*self.ns_prefix, "nft", "delete", "table", "bridge", table], capture_output=True)
        script = bridge_filter(table, rules)
        p = subprocess.run([*self.ns_prefix, "nft", "-f", "-"], input=script, text=True, capture_output=True)
        if p.returncode:
            raise ProviderError(f"nft rejected the rules: {p.stderr.strip()}\n{script}")
        self._state["filters"] = sorted({*self._state.get("filters", []), name})
        self._save_state()

    def filter_remove(self, name: str) -> None:
        subprocess.run(
            [*self.ns_prefix, "nft", "delete", "table", "bridge", f"{self.nft_table}_{name}"], capture_output=True
        )
        self._state["filters"] = [f for f in self._state.get("filters", []) if f != name]
        self._save_state()

    def heal(self) -> None:
        """Undo every filter (partitions, packet loss) and cut NIC."""
        for name in list(self._state.get("filters", [])):
            self.filter_remove(name)
        for node, net in list(self._state["cut"]):
            if self.is_running(node):
                self.restore(node, net)
        self._state["cut"] = []
        self._save_state()
