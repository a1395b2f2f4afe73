"""libvirt provider, storage and observation: the DRBD devices and their backing disks, and what a node holds
(addresses and mounts in one SSH look; a client's through `ip -n`), and what its qemu process costs the host."""

from __future__ import annotations

import contextlib
from pathlib import Path

from lab.providers.base import ProviderError, Result
from lab.providers.common import ipv4_addresses, sh
from lab.providers.libvirt_commands import LibvirtCommands
from lab.providers.resident_pages import resident_kib


class LibvirtObservation(LibvirtCommands):
    def shared_disk(self, service: str, size_mb: int) -> str:
        """The DRBD device of `service` (provision/drbd.py builds it on the disk drbd_backing() names)."""
        minor = self.scenario.services[service].drbd_minor
        if minor is None:
            raise ProviderError(
                f"scenario {self.scenario.name}: services.{service}.drbd_minor is not set: give it a DRBD minor "
                "and port (drbd_minor, drbd_port) to run it on the libvirt provider"
            )
        return f"/dev/drbd{minor}"

    def shared_directory(self, name: str) -> str:
        raise ProviderError(
            f"scenario {self.scenario.name}: a directory every VM shares ({name}) is not built on the libvirt provider "
            "yet: run this scenario on netns, or remove the service that needs it (glance-api's stand-in then serves)"
        )

    def drbd_backing(self, service: str) -> str:
        """The virtio disk the Vagrantfile gives `service` on each cluster node: one per DRBD service, in minor
        order after the root disk (/dev/vdb, /dev/vdc, ...)."""
        ordered = sorted((svc.drbd_minor, s) for s, svc in self.scenario.services.items() if svc.drbd_minor is not None)
        index = [s for _, s in ordered].index(service)
        return f"/dev/vd{chr(ord('b') + index)}"

    def shared_disks(self) -> dict[str, str]:
        return {
            s: f"/dev/drbd{svc.drbd_minor}"
            for s, svc in self.scenario.services.items()
            # a group runs it (ch. 3's g_mysql, ch. 4's g_services_api for Glance's store)
            if svc.drbd_minor is not None and svc.group is not None
        }

    def _paused(self, node: str) -> bool:
        import libvirt

        try:
            return self.domain(node).state()[0] == libvirt.VIR_DOMAIN_PAUSED
        except ProviderError:
            return False

    def mounts(self, node: str) -> list[tuple[str, str]]:
        return self.observe(node)[1]

    def addresses(self, node: str) -> list[str]:
        return self.observe(node)[0]

    def observe(self, node: str) -> tuple[list[str], list[tuple[str, str]]]:
        """(addresses, mounts) in one SSH round trip. A suspended guest cannot be asked, but it cannot change
        either: it reports what it was last seen with (how the observer sees a frozen node keep its VIP and mount);
        a powered-off one holds nothing."""
        if node in self.client_nodes:
            out = sh("ip", "-n", self.client_netns(node), "-o", "-4", "addr", "show", check=False).stdout
            return ipv4_addresses(out), []
        if not self.is_running(node) or node in self._booting:
            # powered off; or powered on from off by restart(), not answering SSH yet: it holds nothing until the lab
            # starts its cluster stack, after the boot
            return [], []
        if self._paused(node):
            return self._seen.get(node, ([], []))
        try:
            r = self.run(node, "ip -o -4 addr show; echo @@; cat /proc/mounts", timeout=5)
        except ProviderError:
            r = Result(node, "observe", 255, "", "no SSH session")
        if not r.ok or "@@" not in r.stdout:
            if not self.is_running(node):
                return [], []  # powered off while we looked (a crash fault): it holds nothing now
            raise ProviderError(f"{node}: could not read addresses and mounts: rc {r.rc} {r.stderr.strip()}")
        addr_text, mount_text = r.stdout.split("@@", 1)
        addrs = ipv4_addresses(addr_text)
        mounts = [(f[0], f[1]) for f in (ln.split() for ln in mount_text.splitlines()) if len(f) > 1]
        self._seen[node] = (addrs, mounts)
        return addrs, mounts

    def memory_kib(self, node: str) -> dict[str, int]:
        """The VM as the host pays for it: RSS, PSS and distinct resident pages of its qemu process (guest RAM +
        emulator)."""
        total = {"rss": 0, "pss": 0}
        if node in self.client_nodes:
            return total
        pidfile = Path(f"/run/libvirt/qemu/{self.domain_name(node)}.pid")
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text().split()[0])
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                key = line.split(":")[0].lower()
                if key in total:
                    total[key] += int(line.split()[1])
            resident = resident_kib([pid])
            if resident is not None:
                total["resident"] = resident
        return total
