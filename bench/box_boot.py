"""Does the offline box boot? Builds it (or reuses the cached one) and boots it once under TCG, contained.

    python bench/box_boot.py [--out /var/tmp/halab-box] [--timeout 600] [--force-build]

Everything of the VM lives in the network namespace `halab-boxtest`: virtlogd and libvirtd are started inside it the
way the lab starts its own (lab/providers/libvirtd.py), so the isolated libvirt network's bridge, dnsmasq and the
guest's tap exist only there, and ssh to the guest runs there too. The root namespace's addresses and routes are
never touched. The domain and the network are transient (`virsh create` / `net-create`); the one thing libvirt keeps
is the `default` storage pool libvirtd.ensure() defines for vagrant-libvirt when it is missing. Teardown (always, in a
finally): destroy the domain and the network, stop libvirtd and virtlogd by PID, kill whatever is left in the
namespace, delete it (libvirtd.stop), remove the overlay.

Prints: box build time and size, libvirtd start time, boot-to-SSH time, the guest's `/proc/drbd` after
`modprobe drbd`, `systemctl is-enabled corosync`, and the qemu process's RSS. Figures, not asserts; exit code 1
when the guest never answered SSH.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab.box import build_box  # noqa: E402
from lab.box_commands import BoxError, ensure_binaries, run, vagrant_keys_dir  # noqa: E402
from lab.providers import libvirtd  # noqa: E402
from lab.providers.base import ProviderError  # noqa: E402
from lab.providers.common import starttime  # noqa: E402
from lab.wait import Thunk, WaitTimeout, until  # noqa: E402

NS = "halab-boxtest"
DOMAIN = "halab-boxtest"
NETWORK = "halab-boxtest"
BRIDGE = "hbt-br0"
HOST_IP = "192.168.121.1"
GUEST_IP = "192.168.121.10"
GUEST_MAC = "52:54:00:b0:c5:01"
VIRSH = ["virsh", "-q", "-c", libvirtd.URI]
HOST_TOOLS = ["ip", "ssh", "virsh", "libvirtd", "virtlogd", "qemu-system-x86_64", "dnsmasq", "qemu-img"]

NETWORK_XML = f"""<network>
  <name>{NETWORK}</name>
  <bridge name='{BRIDGE}' stp='off' delay='0'/>
  <dns enable='no'/>
  <ip address='{HOST_IP}' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.121.100' end='192.168.121.200'/>
      <host mac='{GUEST_MAC}' ip='{GUEST_IP}'/>
    </dhcp>
  </ip>
</network>
"""


def domain_xml(overlay: Path, console_log: Path, *, tb_cache: bool) -> str:
    tcg = "<tcg><tb-cache unit='MiB'>128</tb-cache></tcg>" if tb_cache else ""
    return f"""<domain type='qemu'>
  <name>{DOMAIN}</name>
  <memory unit='MiB'>768</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <features><acpi/><apic/>{tcg}</features>
  <cpu mode='custom' match='exact' check='none'><model fallback='allow'>qemu64</model></cpu>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='{overlay}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='network'>
      <source network='{NETWORK}'/>
      <mac address='{GUEST_MAC}'/>
      <model type='virtio'/>
    </interface>
    <serial type='file'>
      <source path='{console_log}'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>
"""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def in_ns(*cmd: str) -> list[str]:
    return ["ip", "netns", "exec", NS, *cmd]


def wait_until(what: str, check: Callable[[], bool], timeout: float, interval: float = 0.5) -> float:
    """Poll check() until it is true (lab.wait.until); returns the seconds it took."""
    t0 = time.monotonic()
    until(check, timeout=timeout, what=what, interval=interval)
    return time.monotonic() - t0


def host_prereqs() -> None:
    """Install what is missing (libvirtd.ensure() checks its own binaries too, and sets up /dev/kvm and the dirs)."""
    ensure_binaries(HOST_TOOLS)


class Contained:
    """The namespace, the daemons in it and the VM; close() removes all of it, whatever was reached."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.daemons: libvirtd.Daemons | None = None
        self.ns_created = False
        self.overlay = workdir / "overlay.qcow2"
        self.console = workdir / "console.log"

    def start_daemons(self) -> float:
        # Ours or none: libvirtd.ensure() would use a libvirtd that already answers (the host's, a lab's), and its
        # bridges are not in NS.
        for name, other in libvirtd.running_daemons().items():
            if other:
                raise BoxError(
                    f"a {name} is already running (pid {', '.join(map(str, other))}), not started by this script: "
                    "it owns /run/libvirt. Stop it first (or run this where no libvirtd runs)"
                )
        if NS in run(["ip", "netns", "list"]).stdout.split():
            raise BoxError(f"network namespace {NS} already exists (a killed run?). Fix: ip netns del {NS}")
        self.ns_created = True  # ensure() makes it; close() deletes it even when ensure() fails before any daemon ran
        t0 = time.monotonic()
        self.daemons = libvirtd.ensure(NS)
        return time.monotonic() - t0

    def libvirtd_alive(self) -> bool:
        """The libvirtd this script started still runs (by PID and start time: PIDs are reused)."""
        pid, start = ((self.daemons.pids.get("libvirtd") if self.daemons else None) or [None, None])[:2]
        return bool(pid) and starttime(pid) == start

    def start_vm(self, box_img: Path) -> None:
        run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(box_img), "-F", "qcow2", str(self.overlay)])
        self.console.unlink(missing_ok=True)
        net = self.workdir / "network.xml"
        net.write_text(NETWORK_XML)
        run([*VIRSH, "net-create", str(net)])
        dom = self.workdir / "domain.xml"
        dom.write_text(domain_xml(self.overlay, self.console, tb_cache=True))
        res = run([*VIRSH, "create", str(dom)], check=False)
        if res.returncode != 0 and "tb-cache" in res.stderr + res.stdout:
            log(f"libvirt refused <tb-cache>: {res.stderr.strip()}; starting without it")
            dom.write_text(domain_xml(self.overlay, self.console, tb_cache=False))
            res = run([*VIRSH, "create", str(dom)], check=False)
        if res.returncode != 0:
            raise BoxError(f"virsh create failed ({res.returncode}): {res.stderr.strip()}")

    def vm_running(self) -> bool:
        return run([*VIRSH, "domstate", DOMAIN], check=False).stdout.strip() == "running"

    def qemu_pid(self) -> int | None:
        pidfile = Path(f"/run/libvirt/qemu/{DOMAIN}.pid")
        with contextlib.suppress(OSError, ValueError):
            return int(pidfile.read_text().split()[0])
        return None

    def close(self) -> None:
        errors: list[str] = []

        def step(what: str, fn: Thunk[object]) -> None:
            try:
                fn()
            except (BoxError, ProviderError, WaitTimeout, OSError, ValueError) as exc:
                errors.append(f"{what}: {exc}")

        def virsh_gone(*cmd: str) -> None:
            res = run([*VIRSH, *cmd], check=False, timeout=60)
            gone = ("not found", "failed to get domain", "failed to get network", "not running")
            if res.returncode != 0 and not any(g in res.stderr for g in gone):
                errors.append(f"virsh {' '.join(cmd)}: {res.stderr.strip()}")

        if self.libvirtd_alive():
            # Transient domain and network: destroy removes them; undefine is a no-op unless someone defined them.
            for cmd in (("destroy", DOMAIN), ("undefine", DOMAIN), ("net-destroy", NETWORK)):
                step(f"virsh {' '.join(cmd)}", lambda cmd=cmd: virsh_gone(*cmd))
        daemons = self.daemons
        if daemons is not None:
            # Anything the daemons left in the namespace (qemu, dnsmasq) was started by this script: killed with it.
            step(f"stop the daemons and {NS}", lambda: errors.extend(libvirtd.stop(daemons)))
        if self.ns_created and NS in run(["ip", "netns", "list"], check=False).stdout.split():
            step(f"ip netns del {NS}", lambda: run(["ip", "netns", "del", NS]))
        step("remove overlay", lambda: self.overlay.unlink(missing_ok=True))
        for msg in errors:
            log(f"teardown: {msg}")


def ssh_cmd(key: Path, command: str) -> list[str]:
    return in_ns(
        "ssh",
        "-i",
        str(key),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ConnectTimeout=5",
        f"vagrant@{GUEST_IP}",
        command,
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("/var/tmp/halab-box"))
    ap.add_argument("--timeout", type=float, default=600, help="seconds from VM start to SSH (default 600)")
    ap.add_argument("--force-build", action="store_true")
    args = ap.parse_args()

    t0 = time.monotonic()
    box = build_box(args.out, force=args.force_build, log=log)
    build_s = time.monotonic() - t0
    log(f"box: {box} {box.stat().st_size / 2**20:.0f} MiB, build (or cache hit) {build_s:.1f} s")

    work = args.out / "boottest"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    run(["tar", "-xf", str(box), "-C", str(work), "box.img"])
    img = work / "box.img"
    info = run(["qemu-img", "info", str(img)]).stdout
    log("box.img: " + "; ".join(line for line in info.splitlines() if "size" in line))

    keys = vagrant_keys_dir()
    key = work / "vagrant-insecure"
    shutil.copyfile(keys / "vagrant", key)
    key.chmod(0o600)

    host_prereqs()
    lab = Contained(work)
    ok = False
    try:
        log(f"libvirtd + virtlogd in netns {NS}: ready after {lab.start_daemons():.1f} s")
        t_start = time.monotonic()
        lab.start_vm(img)
        log(f"domain {DOMAIN} started (TCG, qemu64, 768 MiB); waiting for ssh vagrant@{GUEST_IP} in {NS}")

        def ssh_answers() -> bool:
            if not lab.vm_running():
                raise BoxError(f"domain {DOMAIN} is no longer running")
            return run(ssh_cmd(key, "true"), check=False, timeout=30).returncode == 0

        boot_s = wait_until("guest answers SSH as vagrant", ssh_answers, args.timeout, 1.0)
        log(f"boot to SSH: {boot_s:.1f} s")
        for command in (
            "sudo modprobe drbd && cat /proc/drbd",
            "systemctl is-enabled corosync pacemaker mariadb rabbitmq-server haproxy keepalived memcached ssh",
            "systemctl is-system-running; uname -r; free -m | head -2; df -h / | tail -1",
            "ip -4 -o addr show eth0",
            "cat /etc/machine-id; ls /etc/ssh/ssh_host_*_key.pub; sudo -n true && echo passwordless-sudo",
        ):
            res = run(ssh_cmd(key, command), check=False, timeout=120)
            out = (res.stdout + res.stderr).strip().replace("\n", "\n    ")
            log(f"guest$ {command}  (exit {res.returncode})\n    {out}")
        pid = lab.qemu_pid()
        if pid:
            rss = next(
                (line.split()[1] for line in Path(f"/proc/{pid}/status").read_text().splitlines() if "VmRSS" in line),
                "?",
            )
            log(f"qemu pid {pid}: VmRSS {int(rss) // 1024 if rss != '?' else rss} MiB")
        log(
            f"summary: build {build_s:.1f} s, size {box.stat().st_size / 2**20:.0f} MiB, boot to SSH {boot_s:.1f} s, "
            f"VM start to checks done {time.monotonic() - t_start:.1f} s"
        )
        ok = True
    except (BoxError, ProviderError, WaitTimeout) as exc:  # libvirtd's errors, and a bounded wait that ran out
        log(f"FAILED: {exc}")
    finally:
        if lab.console.exists():
            text = re.sub(r"\x1b\[[0-9;]*m", "", lab.console.read_text(errors="replace"))
            tail = [line.rstrip() for line in text.splitlines() if line.strip()][-15:]
            log("serial console (last lines):\n    " + "\n    ".join(tail))
        t_down = time.monotonic()
        lab.close()
        log(f"teardown: {time.monotonic() - t_down:.1f} s")
        img.unlink(missing_ok=True)
        key.unlink(missing_ok=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
