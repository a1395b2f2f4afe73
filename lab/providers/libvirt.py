"""libvirt provider: the scenario's cluster nodes as Vagrant + vagrant-libvirt VMs (the top-level Vagrantfile,
fed by the same scenario YAML), faults from the host through libvirt-python.

- Daemons: the host's libvirtd when one answers; else virtlogd + libvirtd started by the lab inside the network
  namespace `halab-<lab>-lv-virt`, where libvirt then makes every bridge, tap and dnsmasq (lab/providers/libvirtd.py).
  vagrant and every SSH connection run in that namespace too; the root namespace gets no lab route.
- Nodes whose only role is `client` are not VMs: each is a network namespace with a veth on the libvirt bridge of
  each of its networks, at its scenario address. Workloads run there on the host's clock, the same clock the fault
  timestamps and the observer use, so a measured gap never mixes two clocks.
- Commands: fabric over `vagrant ssh-config` (lab/providers/ssh.py), as root through sudo.
- Faults: crash = destroy (power cut), freeze/thaw = suspend/resume, reset, cut/restore = the NIC's link state
  (updateDeviceFlags), partition and packet loss = nftables bridge rules on the taps, kill/stop a service in the guest.
- Storage: each cluster VM has a second virtio disk (/dev/vdb); provision/drbd.py builds the guide's DRBD
  resources on it, so `has_drbd` is true here.

This module is the lab's lifecycle (preflight, up, down, the client namespaces, the fence host, the report's notes);
the rest is in layers, each on the ones below it:
  libvirt_node.py      names, state file, the libvirt connection and the Vagrant handle
  libvirt_commands.py  run, command_argv, put, start_daemon, spawn; SSH after a boot, the node's preparation
  libvirt_observe.py   DRBD devices and disks, addresses, mounts, observe, memory
  libvirt_faults.py    crash, poweroff, reset, restart, freeze, thaw, kill/stop service, cut/restore, filters, heal
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import xml.etree.ElementTree as ET

from lab import progress
from lab.providers import fence_host, libvirtd
from lab.providers.base import ProviderError
from lab.providers.common import default_state_root, sh, signal_pid
from lab.providers.fence_host import FenceTarget
from lab.providers.libvirt_commands import CLIENT_PATH, NODE_PREP, LibvirtCommands
from lab.providers.libvirt_faults import LibvirtFaults
from lab.providers.libvirt_node import BOOT_S, DEFAULT_BOX, DESTROY_S, REPO, UP_S
from lab.providers.libvirt_observe import LibvirtObservation

__all__ = [
    "BOOT_S",
    "CLIENT_PATH",
    "DEFAULT_BOX",
    "DESTROY_S",
    "NODE_PREP",
    "REPO",
    "UP_S",
    "LibvirtProvider",
    "default_state_root",
]


class LibvirtProvider(LibvirtFaults, LibvirtObservation, LibvirtCommands):
    name = "libvirt"
    has_drbd = True
    # A look is one SSH round trip into the guest: milliseconds on KVM, 0.3-2 s under TCG (measured here: two nodes
    # looked at one after the other gave 35 samples in 79.5 s). The observer's gap limit is 30 periods.
    observe_period_s = 0.5
    shared_clock = False  # each VM keeps its own
    shared_directories = False  # no 9p/virtiofs share yet (shared_directory says so)

    @property
    def emulated(self) -> bool:
        """TCG: as the Vagrantfile chose (LAB_LIBVIRT_DRIVER, else kvm where usable, else qemu)."""
        forced = os.environ.get("LAB_LIBVIRT_DRIVER")
        if forced:
            return forced != "kvm"
        from lab.providers import kvm_usable

        return not kvm_usable()[0]

    def preflight(self) -> None:
        libvirtd.preflight()
        if os.environ.get("LAB_LIBVIRT_DRIVER") == "kvm":
            from lab.providers import kvm_usable

            ok, why = kvm_usable()
            if not ok:
                raise ProviderError(
                    f"LAB_LIBVIRT_DRIVER=kvm, but KVM is not usable here ({why}): unset LAB_LIBVIRT_DRIVER to run "
                    "the VMs under TCG (slow but real), or run on a host with vmx/svm and /dev/kvm"
                )
        if shutil.which("vagrant") is None:
            raise ProviderError(
                "vagrant is not installed: `bash .ci/install-debian-packages` (vagrant vagrant-libvirt)"
            )
        plugins = sh("vagrant", "plugin", "list", check=False, timeout=120).stdout
        if "vagrant-libvirt" not in plugins:
            raise ProviderError("the vagrant-libvirt plugin is missing: apt-get install vagrant-libvirt")
        boxes = sh("vagrant", "box", "list", check=False, timeout=120).stdout
        if not any(line.split()[:1] == [self.box] for line in boxes.splitlines()):
            raise ProviderError(
                f"box {self.box} is not installed: build the offline one with `halab box build` (or set LAB_BOX to "
                f"an installed libvirt box; `vagrant box list` shows {boxes.strip() or 'none'})"
            )
        try:
            import libvirt  # noqa: F401
            import vagrant  # noqa: F401
            from fabric import Connection  # noqa: F401
        except ImportError as exc:
            raise ProviderError(
                f"{exc.name} is missing in this Python: use `tox -e libvirt-smoke` (Debian's python3-libvirt "
                "through system site-packages, python-vagrant and fabric from PyPI)"
            ) from exc

    # ---------------------------------------------------------------- lifecycle
    def is_up(self) -> bool:
        return bool(self._state.get("vms"))

    def up(self) -> None:
        progress.note("preflight: vagrant, its libvirt plugin, the box")  # each `vagrant` call starts Ruby: seconds
        self.preflight()
        if self._state.get("daemons") or self._state.get("vms") or self._state.get("clients"):
            self.down()  # a previous run of this lab left something: start clean
        self._state = self._fresh_state()
        shutil.rmtree(self.state_dir / "vagrant", ignore_errors=True)
        try:
            progress.note("libvirt daemons")
            self._state["daemons"] = libvirtd.ensure(f"{self.prefix}-virt").to_state()
            self._vagrant = None  # its wrapper enters the daemons' namespace, which may have just changed
            self._state["vms"] = True
            self._save_state()  # before `vagrant up`: a kill during it must still destroy what it made
            v = self.vagrant()
            t0 = time.monotonic()
            # minutes of one subprocess (under TCG): the spinner shows the last line of its log as it goes
            log = self.state_dir / "vagrant.log"
            progress.note(f"vagrant up: {len(self.vm_nodes)} VMs", detail=progress.log_tail(log))
            try:
                v.up(provider="libvirt")
            except subprocess.CalledProcessError as exc:
                tail = (self.state_dir / "vagrant.log").read_text()[-3000:]
                raise ProviderError(f"`vagrant up` failed ({exc.returncode}); the end of its log:\n{tail}") from exc
            self._state["up_s"] = round(time.monotonic() - t0, 1)
            progress.note(f"preparing {', '.join(self.vm_nodes)}")
            for node in self.vm_nodes:
                self._prepare(node)
            if self.client_nodes:
                progress.note(f"client namespaces {', '.join(self.client_nodes)}")
            for node in self.client_nodes:
                self._make_client(node)
            self._save_state()
        except BaseException:
            with contextlib.suppress(ProviderError):  # the original error is the one to show
                self.down()
            raise

    def _bridge(self, network: str) -> str:
        return self.virt().networkLookupByName(self.network_name(network)).bridgeName()

    def _make_client(self, node: str) -> None:
        ns = self.client_netns(node)
        self._state["clients"].append(ns)
        self._save_state()
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        for i, (net, addr) in enumerate(self.scenario.nodes[node].addresses.items()):
            host_end = f"hl{i}-{node}"[:15]
            where = ["-n", self.daemons.netns] if self.daemons and self.daemons.netns else []
            sh("ip", *where, "link", "add", host_end, "type", "veth", "peer", "name", net, "netns", ns)
            sh("ip", *where, "link", "set", host_end, "master", self._bridge(net), "up")
            prefix = self.scenario.networks[net].cidr.prefixlen
            sh("ip", "-n", ns, "addr", "add", f"{addr}/{prefix}", "dev", net)
            sh("ip", "-n", ns, "link", "set", net, "up")

    def down(self) -> None:
        """Destroy the VMs, networks and volumes vagrant made, the client namespaces, the daemons the lab started
        and their namespace; safe after a killed harness. Names what it could not remove."""
        problems: list[str] = []
        for r in self._remotes.values():
            with contextlib.suppress(Exception):
                r.close()
        self._remotes.clear()
        fence_host.stop(self._state.get("fence_sshd"))  # in the lab namespace too, when there is one
        self._fence = None
        for name in list(self._state.get("filters", [])):  # in the root namespace with a host's libvirtd
            self.filter_remove(name)
        # and any table of this lab's a killed harness created but never recorded
        listed = subprocess.run([*self.ns_prefix, "nft", "list", "tables", "bridge"], capture_output=True, text=True)
        for line in listed.stdout.splitlines():
            table = line.split()[-1] if line.startswith("table bridge ") else ""
            if table.startswith(f"{self.nft_table}_"):
                subprocess.run([*self.ns_prefix, "nft", "delete", "table", "bridge", table], capture_output=True)
        for ns in self._state.get("clients", []):
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                signal_pid(int(pid), signal.SIGKILL)
            sh("ip", "netns", "del", ns, check=False)
        daemons = self.daemons
        if self._state.get("vms") and daemons and daemons.contained and not libvirtd.answers():
            # The harness that started them was killed, and its daemons with it: start them again, or the domains,
            # networks and volumes they defined would outlive the lab.
            with contextlib.suppress(ProviderError):
                libvirtd.stop(daemons)
                daemons = libvirtd.ensure(daemons.netns or f"{self.prefix}-virt")
                self._state["daemons"] = daemons.to_state()
                self._save_state()
        if self._state.get("vms") and libvirtd.answers():
            progress.note(
                f"vagrant destroy: {len(self.vm_nodes)} VMs", detail=progress.log_tail(self.state_dir / "vagrant.log")
            )
            try:
                self.vagrant().destroy()
            except Exception as exc:  # vagrant's error is in its log; the sweep below still removes what it left
                problems.append(f"vagrant destroy: {exc}")
            problems += self._sweep()
        if daemons:
            if daemons.contained:
                progress.note("stopping the lab's libvirt daemons")
            problems += libvirtd.stop(daemons)
        if problems:
            raise ProviderError(
                f"{self.lab}: teardown left things behind: {'; '.join(problems)}. Run `halab down "
                f"{self.scenario.name} --provider libvirt` again, or remove them with virsh"
            )
        self._state = self._fresh_state()
        self._conn = None
        self._save_state()

    def _sweep(self) -> list[str]:
        """Remove what vagrant destroy leaves: this scenario's domains, networks and volumes, and the box image
        vagrant-libvirt uploaded into the pool when the lab runs its own libvirtd (nothing else uses it)."""
        import libvirt

        problems: list[str] = []
        conn = self.virt()
        mine = f"halab-{self.scenario.name}-"
        # exact names: a lab `ap` must not sweep the domains of a lab `ap-x` (same prefix)
        domains = {self.domain_name(n) for n in self.vm_nodes}
        networks = {self.network_name(n) for n in self.scenario.networks} | {f"{mine}mgmt"}
        for dom in conn.listAllDomains():
            if dom.name() in domains:
                with contextlib.suppress(libvirt.libvirtError):
                    if dom.isActive():
                        dom.destroy()
                    dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
        for net in conn.listAllNetworks():
            if net.name() in networks:
                with contextlib.suppress(libvirt.libvirtError):
                    if net.isActive():
                        net.destroy()
                    if net.isPersistent():
                        net.undefine()
        with contextlib.suppress(libvirt.libvirtError):
            pool = conn.storagePoolLookupByName(libvirtd.POOL)
            pool.refresh()
            for vol in pool.listAllVolumes():
                ours = any(vol.name().startswith(d) for d in domains) or (
                    self.daemons and self.daemons.contained and "_vagrant_box_image" in vol.name()
                )
                if ours:
                    with contextlib.suppress(libvirt.libvirtError):
                        vol.delete()
        left = [d.name() for d in conn.listAllDomains() if d.name() in domains]
        left += [n.name() for n in conn.listAllNetworks() if n.name() in networks]
        if left:
            problems.append(f"libvirt objects {left}")
        return problems

    def notes(self) -> list[str]:
        """What the report must say about how the VMs ran."""
        d = self.daemons
        if d and d.contained:
            where = f"libvirtd and virtlogd started by the lab inside network namespace {d.netns}"
        elif d and d.netns:
            where = f"a libvirtd this lab did not start, inside network namespace {d.netns} (left running)"
        else:
            where = "the host's system libvirtd (its isolated networks)"
        doms = [self.domain(n) for n in self.vm_nodes if self.is_running(n)]
        kinds = sorted({ET.fromstring(dom.XMLDesc(0)).get("type", "?") for dom in doms})
        accel = {"kvm": "KVM", "qemu": "TCG (no usable KVM: every guest runs ~10x slower)"}
        return [
            f"libvirt: {len(self.vm_nodes)} VMs ({', '.join(accel.get(k, k) for k in kinds)}), box {self.box}, "
            f"`vagrant up` {self._state.get('up_s', '?')} s; {where}; clients {self.client_nodes} as namespaces "
            "on the libvirt bridges"
        ]

    # ---------------------------------------------------------------- fencing (hardened profile)
    def fence_target(self) -> FenceTarget:
        """fence_virsh's way in: the lab's own sshd on the management network's host address (started once)."""
        if self._fence is None:
            net = self.virt().networkLookupByName(self.network_name("mgmt"))
            ip = ET.fromstring(net.XMLDesc(0)).find("ip")
            address = ip.get("address") if ip is not None else None
            if not address:
                raise ProviderError(f"libvirt network {self.network_name('mgmt')} has no host address to fence from")
            self._fence, pid = fence_host.start(self.state_dir, self.ns_prefix, address)
            self._state["fence_sshd"] = pid
            self._save_state()
        return self._fence
