"""The libvirt daemons a lab talks to: the host's own (a system libvirtd answering on /run/libvirt), or a
pair (virtlogd + libvirtd) the lab starts itself inside a network namespace of its own, so that every
bridge, tap and dnsmasq libvirt makes lives there and the root namespace never gets a route to the
guide's subnets. Python clients still reach a contained libvirtd through its socket under /run/libvirt;
anything that talks to the guests by IP (vagrant's ssh, fabric) must enter the namespace.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

from lab.providers.base import ProviderError
from lab.providers.common import sh, signal_pid, starttime
from lab.wait import until

URI = "qemu:///system"
SOCKET = Path("/run/libvirt/libvirt-sock")
PIDFILES = {"virtlogd": Path("/run/virtlogd.pid"), "libvirtd": Path("/run/libvirtd.pid")}
POOL = "default"
POOL_DIR = Path("/var/lib/libvirt/images")
# Without systemd nothing starts libvirtd for us; its first start probes QEMU's capabilities (measured here:
# seconds with /dev/kvm group kvm 0660, up to 100 s when it is root-only). Bounded well above both.
START_S = 300
STOP_S = 15
REQUIRED = {
    "libvirtd": "libvirt-daemon-system",
    "virtlogd": "libvirt-daemon-system",
    "virsh": "libvirt-clients",
    "qemu-system-x86_64": "qemu-system-x86",
    "dnsmasq": "dnsmasq-base",
    "socat": "socat",
    "nft": "nftables",
}


def running_daemons() -> dict[str, list[int]]:
    """PIDs of every libvirtd/virtlogd on this host, whatever namespace they run in."""
    found: dict[str, list[int]] = {}
    for name in PIDFILES:
        out = sh("pgrep", "-x", name, check=False).stdout.split()
        found[name] = [int(p) for p in out]
    return found


def answers() -> bool:
    return sh("virsh", "-c", URI, "version", check=False, timeout=30).returncode == 0


@dataclass
class Daemons:
    """Where the lab's libvirt runs: `netns` is the namespace holding the lab's bridges (None: the host's
    system libvirtd, bridges in the root namespace), `pids` the daemons the lab started (name -> [pid,
    starttime]), which are the only ones teardown stops."""

    netns: str | None
    pids: dict[str, list]

    @property
    def contained(self) -> bool:
        """The lab started these daemons in a namespace of its own (then it also owns their networks' images)."""
        return self.netns is not None and bool(self.pids)

    def prefix(self) -> list[str]:
        """argv prefix to run a command where the lab's networks are."""
        return ["ip", "netns", "exec", self.netns] if self.netns else []

    def to_state(self) -> dict:
        return {"netns": self.netns, "pids": self.pids}

    @classmethod
    def from_state(cls, state: dict | None) -> Daemons | None:
        return cls(state["netns"], state.get("pids", {})) if state else None


def preflight() -> None:
    if os.geteuid() != 0:
        raise ProviderError(
            "the libvirt provider needs root here (it starts libvirtd in a lab network namespace and filters its "
            "bridges): run as root, e.g. `sudo -E tox -e libvirt-smoke`"
        )
    missing = sorted({pkg for b, pkg in REQUIRED.items() if shutil.which(b) is None})
    if missing:
        raise ProviderError(
            f"missing Debian packages {', '.join(missing)}: run `bash .ci/install-debian-packages` "
            f"(or apt-get install {' '.join(missing)})"
        )


def ensure(netns: str) -> Daemons:
    """Use the host's libvirtd when one answers and was not started by a lab; otherwise start virtlogd and
    libvirtd inside `netns` (created here). Raises with what to fix when a foreign libvirtd runs but does not
    answer (it owns /run/libvirt)."""
    preflight()
    others = running_daemons()
    if others["libvirtd"]:
        if answers():
            # Not ours: the host's (bridges in the root namespace) or another lab's (in its namespace; vagrant and
            # ssh must enter that one). Either way teardown leaves it running.
            where = sh("ip", "netns", "identify", str(others["libvirtd"][0]), check=False).stdout.strip()
            return Daemons(where or None, {})
        raise ProviderError(
            f"a libvirtd runs (pid {others['libvirtd']}) but `virsh -c {URI} version` fails: fix or stop it "
            "(it owns /run/libvirt), then run again"
        )
    _kvm_group()
    for d in ("/run/libvirt", "/var/lib/libvirt/dnsmasq", str(POOL_DIR)):
        Path(d).mkdir(parents=True, exist_ok=True)
    if netns not in sh("ip", "netns", "list", check=False).stdout.split():
        sh("ip", "netns", "add", netns)
    sh("ip", "-n", netns, "link", "set", "lo", "up")
    daemons = Daemons(netns, {})
    try:
        for name in ("virtlogd", "libvirtd"):
            if others[name]:  # a virtlogd without libvirtd: left by someone else; it holds no lab state
                continue
            PIDFILES[name].unlink(missing_ok=True)
            sh("ip", "netns", "exec", netns, f"/usr/sbin/{name}", "-d")
            pid = until(
                lambda n=name: _pid_from(PIDFILES[n]),
                timeout=STOP_S,
                what=f"{name} to write {PIDFILES[name]}",
            )
            daemons.pids[name] = [pid, starttime(pid)]
        until(answers, timeout=START_S, interval=0.5, what=f"libvirtd in {netns} to answer `virsh -c {URI} version`")
        _ensure_pool(daemons)
    except BaseException:
        stop(daemons)
        raise
    return daemons


def _pid_from(pidfile: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(pidfile.read_text().split()[0])
    return None


def _kvm_group() -> None:
    """What udev does on a normal host; with /dev/kvm root-only, libvirt re-probes QEMU on every define (notes:
    55-100 s each instead of 0.02 s)."""
    kvm = Path("/dev/kvm")
    if kvm.exists() and sh("getent", "group", "kvm", check=False).returncode == 0:
        sh("chgrp", "kvm", str(kvm))
        kvm.chmod(0o660)


def _ensure_pool(daemons: Daemons) -> None:
    """vagrant-libvirt uploads boxes and disks into the `default` storage pool."""
    virsh = ["virsh", "-c", URI]
    if sh(*virsh, "pool-info", POOL, check=False).returncode != 0:
        sh(*virsh, "pool-define-as", POOL, "dir", "--target", str(POOL_DIR))
    state = [
        ln.split(":", 1)[1].strip()
        for ln in sh(*virsh, "pool-info", POOL).stdout.splitlines()
        if ":" in ln and ln.split(":", 1)[0].strip() == "State"
    ]
    if state != ["running"]:
        sh(*virsh, "pool-start", POOL)


def stop(daemons: Daemons) -> list[str]:
    """Stop what the lab started (by PID, identity-checked), kill anything else in its namespace (qemu, dnsmasq:
    started by those daemons), delete the namespace. Returns what could not be removed."""
    problems: list[str] = []
    for name in ("libvirtd", "virtlogd"):
        pid, start = (daemons.pids.get(name) or [None, None])[:2]
        if pid and starttime(pid) == start:
            signal_pid(pid, signal.SIGTERM)
            try:
                until(lambda p=pid, s=start: starttime(p) != s, timeout=STOP_S, what=f"{name} {pid} to exit")
            except AssertionError:
                signal_pid(pid, signal.SIGKILL)
    if daemons.contained and daemons.netns in sh("ip", "netns", "list", check=False).stdout.split():
        netns = daemons.netns  # a str: it is in that list
        for pid in sh("ip", "netns", "pids", netns, check=False).stdout.split():
            signal_pid(int(pid), signal.SIGKILL)
        try:
            until(
                lambda: not sh("ip", "netns", "pids", netns, check=False).stdout.split(),
                timeout=STOP_S,
                what=f"every process in {netns} to exit",
            )
        except AssertionError as exc:
            problems.append(str(exc))
        sh("ip", "netns", "del", netns, check=False)
        if netns in sh("ip", "netns", "list", check=False).stdout.split():
            problems.append(f"namespace {netns} is still there")
    return problems


