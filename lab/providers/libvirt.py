"""libvirt provider: the scenario's cluster nodes as Vagrant + vagrant-libvirt VMs (the top-level Vagrantfile,
fed by the same scenario YAML), faults from the host through libvirt-python.

- Daemons: the host's libvirtd when one answers; else virtlogd + libvirtd started by the lab inside the network
  namespace `halab-<lab>-virt`, where libvirt then makes every bridge, tap and dnsmasq (lab/providers/libvirtd.py).
  vagrant and every SSH connection run in that namespace too; the root namespace gets no lab route.
- Nodes whose only role is `client` are not VMs: each is a network namespace with a veth on the libvirt bridge of
  each of its networks, at its scenario address. Workloads run there on the host's clock, the same clock the fault
  timestamps and the observer use, so a measured gap never mixes two clocks.
- Commands: fabric over `vagrant ssh-config` (lab/providers/ssh.py), as root through sudo.
- Faults: crash = destroy (power cut), freeze/thaw = suspend/resume, reset, cut/restore = the NIC's link state
  (updateDeviceFlags), partition and packet loss = nftables bridge rules on the taps, kill/stop a service in the guest.
- Storage: each cluster VM has a second virtio disk (/dev/vdb); provision/drbd.py builds the guide's DRBD
  resources on it, so `has_drbd` is true here.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

from lab.providers import fence_host, libvirtd
from lab.providers.base import ProviderError, Result
from lab.providers.common import bridge_filter, daemon_command, kill_command, put_command, sh, stop_service_via
from lab.providers.fence_host import FenceTarget
from lab.scenario import Scenario
from lab.wait import until

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BOX = "halab/debian12"
# Measured here under TCG: a 2-node `vagrant up` 67-100 s, a single boot to SSH 30-43 s, 2.2 s per destroy. The
# bounds leave room for a loaded 2-core runner; on KVM all of this takes seconds.
UP_S = 1200
BOOT_S = 300
DESTROY_S = 300
CLIENT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What the netns provider's node init makes: daemons started by hand (not by their units) expect them.
NODE_PREP = (
    "mkdir -p /run/crm /run/mysqld /run/rabbitmq /run/lock /var/log/pacemaker /var/log/mysql /var/log/rabbitmq "
    "/var/log/crmsh /var/log/corosync /var/log/halab /run/haproxy /run/keepalived /var/lib/pacemaker/cib "
    "/var/lib/pacemaker/pengine /var/lib/pacemaker/blackbox /var/lib/pacemaker/cores && "
    "chown -R hacluster:haclient /var/lib/pacemaker /run/crm /var/log/pacemaker && "
    "chown mysql:mysql /run/mysqld /var/log/mysql /var/lib/mysql && "
    "chown rabbitmq:rabbitmq /run/rabbitmq /var/log/rabbitmq /var/lib/rabbitmq"
)


def default_state_root() -> Path:
    return Path(os.environ.get("HALAB_STATE_DIR", "/var/tmp/halab"))


class LibvirtProvider:
    name = "libvirt"
    has_drbd = True
    # A look is one SSH round trip into the guest: milliseconds on KVM, 0.3-2 s under TCG (measured here: two nodes
    # looked at one after the other gave 35 samples in 79.5 s). The observer's gap limit is 30 periods.
    observe_period_s = 0.5

    def __init__(self, scenario: Scenario, lab: str | None = None, state_root: Path | None = None) -> None:
        self.scenario = scenario
        self.lab = lab or scenario.name
        # `-lv`: the netns provider names its namespaces halab-<lab>-<node>; both labs of a scenario may coexist.
        self.prefix = f"halab-{self.lab}-lv"
        self.state_dir = (state_root or default_state_root()) / f"{self.lab}.libvirt"
        self.state_file = self.state_dir / "state.json"
        self._state: dict = self._load_state()
        self._remotes: dict = {}
        self._seen: dict[str, tuple[list[str], list[tuple[str, str]]]] = {}  # last look at each guest
        self._vagrant = None
        self._fence: FenceTarget | None = None
        self._lock = threading.RLock()  # provisioning runs nodes in threads; vagrant calls and connects once each
        self._conn = None
        self.box = os.environ.get("LAB_BOX", DEFAULT_BOX)
        # Named after the lab: with the host's libvirtd the bridges (and this table) are in the root namespace.
        self.nft_table = "halab_" + re.sub(r"\W", "_", self.lab)

    # ---------------------------------------------------------------- names and state
    @property
    def vm_nodes(self) -> list[str]:
        return [n.name for n in self.scenario.nodes.values() if set(n.roles) != {"client"}]

    @property
    def client_nodes(self) -> list[str]:
        return [n.name for n in self.scenario.nodes.values() if set(n.roles) == {"client"}]

    def domain_name(self, node: str) -> str:
        return f"halab-{self.scenario.name}-{node}"  # the Vagrantfile's default_prefix + node name

    def network_name(self, network: str) -> str:
        return f"halab-{self.scenario.name}-{network}"

    def client_netns(self, node: str) -> str:
        return f"{self.prefix}-{node}"

    def _fresh_state(self) -> dict:
        return {"provider": self.name, "lab": self.lab, "daemons": None, "clients": [], "cut": [], "vms": False}

    def _load_state(self) -> dict:
        if self.state_file.exists():
            return json.loads(self.state_file.read_text())
        return self._fresh_state()

    def _save_state(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._state, indent=2))
        tmp.replace(self.state_file)

    @property
    def daemons(self) -> libvirtd.Daemons | None:
        return libvirtd.Daemons.from_state(self._state.get("daemons"))

    @property
    def ns_prefix(self) -> list[str]:
        d = self.daemons
        return d.prefix() if d else []

    # ---------------------------------------------------------------- libvirt and vagrant
    def virt(self):  # noqa: ANN201 - libvirt.virConnect
        import libvirt

        if self._conn is None or not self._conn.isAlive():
            try:
                self._conn = libvirt.open(libvirtd.URI)
            except libvirt.libvirtError as exc:
                raise ProviderError(
                    f"cannot open {libvirtd.URI}: {exc}. Start libvirtd (`halab up` starts one in a lab namespace "
                    "when none runs) or run as a user allowed on qemu:///system (group libvirt)"
                ) from exc
        return self._conn

    def domain(self, node: str):  # noqa: ANN201 - libvirt.virDomain
        import libvirt

        try:
            return self.virt().lookupByName(self.domain_name(node))
        except libvirt.libvirtError as exc:
            raise ProviderError(f"no libvirt domain {self.domain_name(node)} for node {node}: is the lab up?") from exc

    def vagrant(self):  # noqa: ANN201 - vagrant.Vagrant
        with self._lock:
            if self._vagrant is None:
                self._vagrant = self._make_vagrant()
            return self._vagrant

    def _make_vagrant(self):  # noqa: ANN202 - vagrant.Vagrant
        import vagrant

        self.state_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "LAB_SCENARIO": str(Path(self.scenario.path).resolve()),
            "LAB_NAME": self.scenario.name,
            "LAB_BOX": self.box,
            "LAB_NODES": ",".join(self.vm_nodes),
            # Vagrant's machine state per lab, outside the repo: two clones or labs never share it.
            "VAGRANT_DOTFILE_PATH": str(self.state_dir / "vagrant"),
            "VAGRANT_CHECKPOINT_DISABLE": "1",
        }
        log = self.state_dir / "vagrant.log"
        v = vagrant.Vagrant(root=str(REPO), env=env, out_cm=vagrant.make_file_cm(log), err_cm=vagrant.make_file_cm(log))
        # Vagrant talks to the guests by IP (ssh after boot): it must run where the lab's bridges are.
        wrapper = self.state_dir / "vagrant-in-lab"
        vagrant_bin = shutil.which("vagrant") or "/usr/bin/vagrant"
        wrapper.write_text(f'#!/bin/sh\nexec {" ".join(map(shlex.quote, self.ns_prefix))} {vagrant_bin} "$@"\n')
        wrapper.chmod(0o755)
        v._vagrant_exe = str(wrapper)  # python-vagrant has no command prefix; its executable is this attribute
        return v

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
        self.preflight()
        if self._state.get("daemons") or self._state.get("vms") or self._state.get("clients"):
            self.down()  # a previous run of this lab left something: start clean
        self._state = self._fresh_state()
        shutil.rmtree(self.state_dir / "vagrant", ignore_errors=True)
        try:
            self._state["daemons"] = libvirtd.ensure(f"{self.prefix}-virt").to_state()
            self._vagrant = None  # its wrapper enters the daemons' namespace, which may have just changed
            self._state["vms"] = True
            self._save_state()  # before `vagrant up`: a kill during it must still destroy what it made
            v = self.vagrant()
            t0 = time.monotonic()
            try:
                v.up(provider="libvirt")
            except subprocess.CalledProcessError as exc:
                tail = (self.state_dir / "vagrant.log").read_text()[-3000:]
                raise ProviderError(f"`vagrant up` failed ({exc.returncode}); the end of its log:\n{tail}") from exc
            self._state["up_s"] = round(time.monotonic() - t0, 1)
            for node in self.vm_nodes:
                self._prepare(node)
            for node in self.client_nodes:
                self._make_client(node)
            self._save_state()
        except BaseException:
            with contextlib.suppress(ProviderError):  # the original error is the one to show
                self.down()
            raise

    def _prepare(self, node: str) -> None:
        """What a node needs before the roles: the scenario's /etc/hosts (rabbitmq and corosync resolve peers by
        name; Vagrant's `127.0.1.1 <hostname>` line would point a node's name at loopback) and runtime dirs."""
        hosts = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
        for other in self.scenario.nodes.values():
            hosts.append(f"{next(iter(other.addresses.values()))} {other.name}")
        self.put(node, "/etc/hosts", "\n".join(hosts) + "\n")
        self.run(node, NODE_PREP, check=True, timeout=60)

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
        for ns in self._state.get("clients", []):
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), 9)
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
            try:
                self.vagrant().destroy()
            except Exception as exc:  # vagrant's error is in its log; the sweep below still removes what it left
                problems.append(f"vagrant destroy: {exc}")
            problems += self._sweep()
        if daemons:
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
        for dom in conn.listAllDomains():
            if dom.name().startswith(mine):
                with contextlib.suppress(libvirt.libvirtError):
                    if dom.isActive():
                        dom.destroy()
                    dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
        for net in conn.listAllNetworks():
            if net.name().startswith(mine):
                with contextlib.suppress(libvirt.libvirtError):
                    if net.isActive():
                        net.destroy()
                    if net.isPersistent():
                        net.undefine()
        with contextlib.suppress(libvirt.libvirtError):
            pool = conn.storagePoolLookupByName(libvirtd.POOL)
            pool.refresh()
            for vol in pool.listAllVolumes():
                ours = vol.name().startswith(mine) or (
                    self.daemons and self.daemons.contained and "_vagrant_box_image" in vol.name()
                )
                if ours:
                    with contextlib.suppress(libvirt.libvirtError):
                        vol.delete()
        left = [d.name() for d in conn.listAllDomains() if d.name().startswith(mine)]
        left += [n.name() for n in conn.listAllNetworks() if n.name().startswith(mine)]
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

    # ---------------------------------------------------------------- commands
    def _remote(self, node: str):  # noqa: ANN202 - lab.providers.ssh.Remote
        from lab.providers.ssh import Remote, connection

        with self._lock:
            if node not in self._remotes:
                conf = self.vagrant().conf(vm_name=node)
                if not conf:
                    raise ProviderError(f"`vagrant ssh-config {node}` gave nothing: is {node} up?")
                self._remotes[node] = Remote(node, connection(conf, self.ns_prefix))
            return self._remotes[node]

    def command_argv(self, node: str, argv: Sequence[str], *, tty: bool = False) -> list[str]:
        """A host command line running `argv` as root in the node with the caller's stdio: ssh from inside the
        lab's namespace for a VM (where its management bridge is), `ip netns exec` for a client namespace."""
        if node in self.client_nodes:
            return ["ip", "netns", "exec", self.client_netns(node), *argv]
        if not self.is_running(node):
            raise ProviderError(f"node {node} is not running (powered off or lab not up): restart it")
        conf = self.vagrant().conf(vm_name=node)
        if not conf:
            raise ProviderError(f"`vagrant ssh-config {node}` gave nothing: is {node} up?")
        ssh = ["ssh", "-i", conf["IdentityFile"].strip('"'), "-p", str(conf.get("Port", 22)), "-o", "LogLevel=ERROR"]
        ssh += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes"]
        remote = "sudo -i" if not argv else "sudo " + shlex.join(argv)
        login = f"{conf.get('User', 'vagrant')}@{conf['HostName']}"
        return [*self.ns_prefix, *ssh, "-t" if tty else "-T", login, remote]

    def run(
        self,
        node: str,
        cmd: str,
        *,
        timeout: float = 60.0,
        check: bool = False,
        env: Mapping[str, str] | None = None,
        input: bytes | None = None,
    ) -> Result:
        if node in self.client_nodes:
            res = self._run_client(node, cmd, timeout=timeout, env=env, input=input)
        else:
            if not self.is_running(node):
                raise ProviderError(f"node {node} is not running (powered off or lab not up): restart it")
            res = self._remote(node).run(cmd, timeout=timeout, env=env, input=input)
        return res.check() if check else res

    def _run_client(
        self, node: str, cmd: str, *, timeout: float, env: Mapping[str, str] | None, input: bytes | None
    ) -> Result:
        full_env = {"PATH": CLIENT_PATH, "LANG": "C.UTF-8", "HOME": "/root", **(env or {})}
        try:
            p = subprocess.run(
                ["ip", "netns", "exec", self.client_netns(node), "sh", "-c", cmd],
                input=input,
                capture_output=True,
                timeout=timeout,
                env=full_env,
            )
        except subprocess.TimeoutExpired as exc:
            return Result(node, cmd, 124, (exc.stdout or b"").decode(), f"(timed out after {timeout:.0f}s)")
        return Result(node, cmd, p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))

    def put(self, node: str, path: str, content: str | bytes, *, mode: int = 0o644, owner: str = "root:root") -> None:
        data = content.encode() if isinstance(content, str) else content
        self.run(node, put_command(path, mode, owner), input=data, check=True, timeout=60)

    def start_daemon(self, node: str, cmd: str, log: str) -> None:
        self.run(node, daemon_command(cmd, log), check=True, timeout=30)

    def spawn(self, node: str, argv: Sequence[str], *, log: Path) -> subprocess.Popen[bytes]:
        if node not in self.client_nodes:
            raise ProviderError(f"workloads run on client nodes; {node} is a VM")
        with open(log, "ab") as fh:
            return subprocess.Popen(
                ["ip", "netns", "exec", self.client_netns(node), *argv],
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=fh,
                start_new_session=True,
            )

    # ---------------------------------------------------------------- storage and observation
    def shared_disk(self, service: str, size_mb: int) -> str:
        """The DRBD device of `service` (provision/drbd.py builds it on the disk drbd_backing() names)."""
        minor = self.scenario.services[service].drbd_minor
        if minor is None:
            raise ProviderError(
                f"scenario {self.scenario.name}: services.{service}.drbd_minor is not set: give it a DRBD minor "
                "and port (drbd_minor, drbd_port) to run it on the libvirt provider"
            )
        return f"/dev/drbd{minor}"

    def drbd_backing(self, service: str) -> str:
        """The virtio disk the Vagrantfile gives `service` on each cluster node: one per DRBD service, in minor
        order after the root disk (/dev/vdb, /dev/vdc, ...)."""
        ordered = sorted(
            (svc.drbd_minor, s) for s, svc in self.scenario.services.items() if svc.drbd_minor is not None
        )
        index = [s for _, s in ordered].index(service)
        return f"/dev/vd{chr(ord('b') + index)}"

    def shared_disks(self) -> dict[str, str]:
        return {
            s: f"/dev/drbd{svc.drbd_minor}"
            for s, svc in self.scenario.services.items()
            if svc.drbd_minor is not None and self.scenario.nodes_with_role(s)
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
            return [ln.split()[3].split("/")[0] for ln in out.splitlines() if len(ln.split()) > 3], []
        if not self.is_running(node):
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
        addrs = [ln.split()[3].split("/")[0] for ln in addr_text.splitlines() if len(ln.split()) > 3]
        mounts = [(f[0], f[1]) for f in (ln.split() for ln in mount_text.splitlines()) if len(f) > 1]
        self._seen[node] = (addrs, mounts)
        return addrs, mounts

    def memory_kib(self, node: str) -> dict[str, int]:
        """The VM as the host pays for it: RSS and PSS of its qemu process (guest RAM + emulator)."""
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
        return total

    def is_running(self, node: str) -> bool:
        if node in self.client_nodes:
            return self.client_netns(node) in self._state.get("clients", [])
        try:
            return bool(self.domain(node).isActive())
        except ProviderError:
            return False

    # ---------------------------------------------------------------- faults
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
        dom.create()
        self._wait_ssh(node)
        self._prepare(node)

    def _wait_ssh(self, node: str) -> None:
        until(
            lambda: self._try(node, "true"),
            timeout=BOOT_S,
            interval=1,
            what=f"{node} to boot and answer over SSH",
            seen=lambda: f"domain state {self.domain(node).state()}",
        )

    def _try(self, node: str, cmd: str) -> bool:
        try:
            return self._remote(node).run(cmd, timeout=10).ok
        except ProviderError:
            self._forget(node)
            return False

    def _forget(self, node: str) -> None:
        r = self._remotes.pop(node, None)
        if r is not None:
            with contextlib.suppress(Exception):
                r.close()

    def _vm_only(self, node: str, fault: str) -> None:
        if node not in self.vm_nodes:
            raise ProviderError(f"{fault}: {node} is a client namespace, not a VM")

    def freeze(self, node: str) -> None:
        self._vm_only(node, "freeze")
        self.domain(node).suspend()

    def thaw(self, node: str) -> None:
        import libvirt

        self._vm_only(node, "thaw")
        dom = self.domain(node)
        if dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED:  # else it was fenced (powered off) meanwhile
            dom.resume()

    # ---------------------------------------------------------------- fencing (hardened profile)
    def fence_target(self) -> FenceTarget:
        """fence_virsh's way in: the lab's own sshd on the management network's host address (started once)."""
        if self._fence is None:
            net = self.virt().networkLookupByName(self.network_name("mgmt"))
            ip = ET.fromstring(net.XMLDesc(0)).find("ip")
            if ip is None or not ip.get("address"):
                raise ProviderError(f"libvirt network {self.network_name('mgmt')} has no host address to fence from")
            self._fence, pid = fence_host.start(self.state_dir, self.ns_prefix, ip.get("address"))  # type: ignore[arg-type]
            self._state["fence_sshd"] = pid
            self._save_state()
        return self._fence

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
        if target is None or not target.get("dev"):
            raise ProviderError(f"{node}'s NIC on {network} has no tap (is the domain running?)")
        return target.get("dev")  # type: ignore[return-value]

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
        subprocess.run([*self.ns_prefix, "nft", "delete", "table", "bridge", f"{self.nft_table}_{name}"],
                       capture_output=True)
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
