"""libvirt provider, the base every part of it builds on: the lab's names, its state file, and its handles on
libvirt (libvirt-python) and Vagrant (python-vagrant, run inside the lab's namespace)."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import threading
from pathlib import Path

from lab.providers import libvirtd
from lab.providers.base import ProviderError
from lab.providers.common import LabState, default_state_root
from lab.providers.fence_host import FenceTarget
from lab.scenario import Scenario

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BOX = "halab/debian12"
# Measured here under TCG: a 2-node `vagrant up` 67-100 s, a single boot to SSH 30-43 s, 2.2 s per destroy. The
# bounds leave room for a loaded 2-core runner; on KVM all of this takes seconds.
UP_S = 1200
BOOT_S = 300
DESTROY_S = 300


class LibvirtNode(LabState):
    name: str  # LibvirtProvider's

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
        self._booting: set[str] = set()  # guests powered on by restart() whose SSH is not up yet
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

    # ---------------------------------------------------------------- what every part asks of a node
    def is_running(self, node: str) -> bool:
        if node in self.client_nodes:
            return self.client_netns(node) in self._state.get("clients", [])
        try:
            return bool(self.domain(node).isActive())
        except ProviderError:
            return False

    def _vm_only(self, node: str, fault: str) -> None:
        if node not in self.vm_nodes:
            raise ProviderError(f"{fault}: {node} is a client namespace, not a VM")

    def _forget(self, node: str) -> None:
        r = self._remotes.pop(node, None)
        if r is not None:
            with contextlib.suppress(Exception):
                r.close()
