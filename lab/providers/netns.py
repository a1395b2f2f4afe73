"""netns provider: each node is a namespace set (net+mount+uts+pid+ipc) on one kernel.

Layout, all named after the lab so two labs coexist:
  halab-<lab>-fabric   network namespace holding one bridge per scenario network
                       (and the network's gateway address); nothing in the root namespace
  halab-<lab>-<node>   network namespace of a node; a veth pair joins it to the fabric bridge.
                       Its PID 1 is tini in fresh mount/uts/pid/ipc namespaces with private
                       /run, /dev/shm, /var/lib (overlay) and
                       per-node /etc/{corosync,mysql,rabbitmq}, /etc/hosts and /var/log.
Nodes are driven with nsenter. A state file under the state dir lets `halab down` clean up
after a harness that was killed.

This module is the lab's lifecycle (up, down); the rest is in layers, each on the ones below it:
  netns_node.py      names, state file, a node's PID 1
  netns_commands.py  run, command_argv, put, start_daemon, spawn
  netns_observe.py   shared disks, addresses, mounts, observe, pids, memory
  netns_boot.py      one node's boot (at up, and after a crash)
  netns_faults.py    crash, restart, reset, freeze, thaw, kill/stop service, cut/restore, filters, heal
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal

from lab.providers.base import ProviderError
from lab.providers.common import default_state_root, sh, signal_pid
from lab.providers.netns_boot import NODE_INIT, PRIVATE_ETC, PRIVATE_TMPFS, NetnsBoot
from lab.providers.netns_commands import NetnsCommands
from lab.providers.netns_faults import NetnsFaults
from lab.providers.netns_node import DOWN_S, NODE_PATH
from lab.providers.netns_observe import NetnsObservation
from lab.wait import until

__all__ = [
    "DOWN_S",
    "NODE_INIT",
    "NODE_PATH",
    "PRIVATE_ETC",
    "PRIVATE_TMPFS",
    "REQUIRED",
    "NetnsProvider",
    "default_state_root",
]

# Debian package for each binary the provider itself calls.
REQUIRED = {
    "ip": "iproute2",
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "losetup": "mount",
    "tini": "tini",
    "nft": "nftables",
    "mkfs.xfs": "xfsprogs",
    "setsid": "util-linux",
}


class NetnsProvider(NetnsFaults, NetnsBoot, NetnsCommands, NetnsObservation):
    name = "netns"
    observe_period_s = 0.1  # a look is `ip -n` and a /proc read: milliseconds
    shared_clock = True  # one kernel, one clock
    emulated = False  # the host's own CPU
    shared_directories = True  # every node sees the host's /var/tmp (shared_directory)

    def preflight(self) -> None:
        if os.geteuid() != 0:
            raise ProviderError(
                "the netns provider needs root (namespaces, bridges, loop devices): "
                "run as root, e.g. `sudo -E tox -e lab-active-passive`"
            )
        missing = sorted({pkg for b, pkg in REQUIRED.items() if shutil.which(b) is None})
        if missing:
            raise ProviderError(
                f"missing Debian packages {', '.join(missing)}: run "
                f"`bash .ci/install-debian-packages` (or apt-get install {' '.join(missing)})"
            )

    def is_up(self) -> bool:
        """The lab exists (its nodes may be crashed)."""
        return self.fabric in self._existing_namespaces()

    def up(self) -> None:
        self.preflight()
        if self._state["namespaces"] or self._existing_namespaces():
            self.down()  # a previous run of this lab left something: start clean
        self._state = self._load_state()
        shutil.rmtree(self.state_dir / "nodes", ignore_errors=True)  # last run's logs and configs
        shutil.rmtree(self.state_dir / "shared", ignore_errors=True)  # and shared directories (Glance's images)
        try:
            self._make_fabric()
            for spec in self.scenario.nodes.values():
                self._make_node_network(spec.name)
            for node in self.scenario.nodes:
                self._start_init(node)
            for node in self.scenario.nodes:
                until(
                    lambda n=node: self._ready(n),
                    timeout=10,
                    what=f"{node}'s namespaces to be ready",
                    seen=lambda n=node: f"init pid {self._state['init_pids'].get(n)}",
                )
        except BaseException:
            with contextlib.suppress(ProviderError):  # the original error is the one to show
                self.down()  # leave nothing half-built
            raise

    def _existing_namespaces(self) -> list[str]:
        """This lab's namespaces that exist, by exact name: a lab named `<lab>-2` shares the prefix."""
        mine = {self.fabric} | {self.netns(n) for n in self.scenario.nodes} | set(self._state.get("namespaces", []))
        out = sh("ip", "netns", "list", check=False).stdout
        return [ln.split()[0] for ln in out.splitlines() if ln.split() and ln.split()[0] in mine]

    def _add_netns(self, name: str) -> None:
        self._state["namespaces"].append(name)
        self._save_state()  # record before creating, so a kill between the two still cleans up
        sh("ip", "netns", "add", name)
        sh("ip", "-n", name, "link", "set", "lo", "up")

    def _make_fabric(self) -> None:
        self._add_netns(self.fabric)
        for net in self.scenario.networks.values():
            br = f"br-{net.name}"[:15]
            sh("ip", "-n", self.fabric, "link", "add", br, "type", "bridge")
            # Forward at once: a lab bridge has no loops, and STP's 30 s delay would cost every test.
            sh("ip", "-n", self.fabric, "link", "set", br, "type", "bridge", "forward_delay", "0", "stp_state", "0")
            if net.gateway is not None:
                sh("ip", "-n", self.fabric, "addr", "add", f"{net.gateway}/{net.cidr.prefixlen}", "dev", br)
            sh("ip", "-n", self.fabric, "link", "set", br, "up")

    def _make_node_network(self, node: str) -> None:
        ns = self.netns(node)
        self._add_netns(ns)
        for net_name in self.scenario.nodes[node].addresses:
            v = self.veth(node, net_name)
            sh("ip", "link", "add", v, "netns", self.fabric, "type", "veth", "peer", "name", net_name, "netns", ns)
            sh("ip", "-n", self.fabric, "link", "set", v, "master", f"br-{net_name}"[:15], "up")
        self._configure_addresses(node)

    def down(self) -> None:
        """Remove everything of this lab; safe to call twice and after a killed harness. Every step runs even when
        one fails; what could not be removed is named in one error at the end."""
        namespaces = set(self._state.get("namespaces", [])) | set(self._existing_namespaces())
        problems: list[str] = []
        for ns in namespaces:  # every process of a node, tini included, is in its network namespace
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                signal_pid(int(pid), signal.SIGKILL)
        for ns in namespaces:
            try:
                until(
                    lambda n=ns: not sh("ip", "netns", "pids", n, check=False).stdout.split(),
                    timeout=DOWN_S,
                    what=f"every process in {ns} to exit",
                    seen=lambda n=ns: sh("ip", "netns", "pids", n, check=False).stdout,
                )
            except AssertionError as exc:
                problems.append(str(exc))
            sh("ip", "netns", "del", ns, check=False)
        images = list((self.state_dir / "disks").glob("*.img"))
        for dev in self._state.get("loops", {}).values():
            sh("losetup", "-d", dev, check=False)

        def attached() -> list[str]:
            return [ln for img in images for ln in sh("losetup", "-j", str(img), check=False).stdout.splitlines()]

        def detached() -> bool:
            # The kernel drops a dead node's mounts (and so its hold on the loop device) after its last process
            # is gone, asynchronously: seconds on a loaded machine. `losetup -d` of a busy loop only marks it
            # autoclear, so ask again until it is gone.
            for line in attached():
                sh("losetup", "-d", line.split(":")[0], check=False)
            return not attached()

        try:
            until(detached, timeout=DOWN_S, what="the lab's loop devices to detach", seen=attached)
        except AssertionError as exc:
            problems.append(str(exc))
        left_ns = self._existing_namespaces()
        left_loops = attached()
        if left_ns or left_loops:
            # keep the state (and the images) so a later `halab down` can try again
            raise ProviderError(
                f"{self.lab}: could not remove namespaces {left_ns} / loop devices {left_loops}; "
                f"{'; '.join(problems)}. Run `halab down {self.scenario.name}` again, or remove "
                "them by hand (ip netns pids/del, losetup -d)"
            )
        self._state = self._fresh_state()
        if self.state_dir.exists():
            shutil.rmtree(self.state_dir / "disks", ignore_errors=True)
            shutil.rmtree(self.state_dir / "shared", ignore_errors=True)
            self._save_state()
