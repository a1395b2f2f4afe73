"""netns provider, storage and observation: the loop-backed shared disks, and what a node holds (addresses,
mounts, processes, memory), read from the host through /proc and `ip -n` without entering the node."""

from __future__ import annotations

import os
from pathlib import Path

from lab.providers.common import ipv4_addresses, sh
from lab.providers.netns_node import NetnsNode
from lab.providers.resident_pages import resident_kib


class NetnsObservation(NetnsNode):
    def shared_disk(self, service: str, size_mb: int) -> str:
        """A loop-backed XFS image every node can mount: the stand-in for DRBD on one kernel."""
        if service in self._state["loops"]:
            return self._state["loops"][service]
        img = self.state_dir / "disks" / f"{service}.img"
        img.parent.mkdir(parents=True, exist_ok=True)
        with open(img, "wb") as fh:
            fh.truncate(size_mb * 1024 * 1024)
        sh("mkfs.xfs", "-q", "-f", str(img), timeout=60)
        dev = sh("losetup", "-f", "--show", str(img)).stdout.strip()
        self._state["loops"][service] = dev
        self._save_state()
        return dev

    def shared_directory(self, name: str) -> str:
        """A directory of the lab's state on the host: every node sees the host's /var/tmp (netns_boot.py)."""
        path = self.state_dir / "shared" / name
        path.mkdir(parents=True, exist_ok=True)
        return str(path)

    def shared_disks(self) -> dict[str, str]:
        return dict(self._state["loops"])

    def mounts(self, node: str) -> list[tuple[str, str]]:
        pid = self._init_pid(node)
        try:
            text = Path(f"/proc/{pid}/mounts").read_text()
        except (OSError, TypeError):  # gone, or dying (EINVAL while its mount namespace is torn down)
            return []  # a crashed node mounts nothing
        return [(f[0], f[1]) for f in (ln.split() for ln in text.splitlines())]

    def addresses(self, node: str) -> list[str]:
        # Read through the network namespace: works while the node is frozen, and after a crash
        # shows what the kernel would still answer on.
        return ipv4_addresses(sh("ip", "-n", self.netns(node), "-o", "-4", "addr", "show", check=False).stdout)

    def observe(self, node: str) -> tuple[list[str], list[tuple[str, str]]]:
        return self.addresses(node), self.mounts(node)

    def pids(self, node: str) -> list[int]:
        pid = self._init_pid(node)
        try:
            target = os.readlink(f"/proc/{pid}/ns/pid")
        except (FileNotFoundError, TypeError):
            return []
        found = []
        for p in Path("/proc").iterdir():
            if p.name.isdigit():
                try:
                    if os.readlink(p / "ns/pid") == target:
                        found.append(int(p.name))
                except (FileNotFoundError, PermissionError, ProcessLookupError):
                    continue
        return found

    def memory_kib(self, node: str) -> dict[str, int]:
        """RSS and PSS summed over the node's processes (smaps_rollup), and their distinct resident pages
        (`resident`: each page once, lab/providers/resident_pages.py), the figure a machine of its own would hold."""
        total = {"rss": 0, "pss": 0}
        pids = self.pids(node)
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    key = line.split(":")[0].lower()
                    if key in total:
                        total[key] += int(line.split()[1])
            except (FileNotFoundError, ProcessLookupError):
                continue
        resident = resident_kib(pids)
        return total if resident is None else total | {"resident": resident}
