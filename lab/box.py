"""The offline box: a Debian 12 (bookworm) libvirt Vagrant box built from Debian packages alone.

    build_box(Path("/var/tmp/halab-box"))   # -> /var/tmp/halab-box/halab-debian12.box
    add_box(box_path, "halab/debian12")     # vagrant box add --force

mmdebstrap (minbase) installs a kernel, systemd, ssh, sudo and every package the roles need, so provisioning works
on isolated networks without a mirror. mmdebstrap keeps daemons from starting in the chroot (its own policy-rc.d);
the services the lab starts itself are disabled at boot. The rootfs goes into the one partition of a raw disk
(`mkfs.ext4 -d`), extlinux boots it (syslinux MBR), and the disk is converted to qcow2. The box is a tar of
metadata.json, a Vagrantfile and box.img, which vagrant-libvirt understands.

A stamp file next to the box records a hash of everything the build depends on: a second build with the same
inputs returns the existing box. Every external command goes through `run()`, whose error names the command, its
exit code and the end of its stderr, and says which Debian package provides a missing binary.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from lab import progress

DEFAULT_NAME = "halab/debian12"
SUITE = "bookworm"

# What the roles need inside a VM (provision/ modules), preinstalled: the VMs have no mirror.
ROLE_PACKAGES: tuple[str, ...] = (
    "corosync",
    "corosync-qdevice",
    "corosync-qnetd",
    "pacemaker",
    "crmsh",
    "resource-agents",
    "fence-agents",
    "drbd-utils",
    "xfsprogs",
    "mariadb-server",
    "galera-4",
    "rsync",
    "rabbitmq-server",
    "haproxy",
    "keepalived",
    "memcached",
    "tini",
    "python3-pymysql",
    "python3-pika",
)

# What makes the image a bootable Vagrant guest. dbus: `hostnamectl` (Vagrant's change_host_name on Debian);
# procps: Vagrant's `ps -o comm= 1` systemd check; kmod: modprobe drbd.
BASE_PACKAGES: tuple[str, ...] = (
    "linux-image-amd64",
    "systemd-sysv",
    "udev",
    "dbus",
    "openssh-server",
    "sudo",
    "iproute2",
    "iputils-ping",
    "procps",
    "kmod",
    "python3",
)

# Started by the lab itself (Pacemaker or the harness), so never at boot. drbd: Pacemaker's ms_drbd_* own it.
DISABLED_UNITS: tuple[str, ...] = (
    "corosync.service",
    "corosync-qdevice.service",
    "corosync-qnetd.service",
    "pacemaker.service",
    "mariadb.service",
    "rabbitmq-server.service",
    "haproxy.service",
    "keepalived.service",
    "memcached.service",
    "drbd.service",
    # Nothing to fetch without a mirror; they only cost CPU under TCG.
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_all.timer",
    "fstrim.timer",
)
ENABLED_UNITS: tuple[str, ...] = ("ssh.service", "systemd-networkd.service")

# Which Debian package provides each binary this module (and bench/box_boot.py) runs.
BINARY_PACKAGES: dict[str, str] = {
    "mmdebstrap": "mmdebstrap",
    "sfdisk": "fdisk",
    "mkfs.ext4": "e2fsprogs",
    "extlinux": "extlinux",
    "qemu-img": "qemu-utils",
    "losetup": "mount",
    "mount": "mount",
    "umount": "mount",
    "chroot": "coreutils",
    "rm": "coreutils",
    "vagrant": "vagrant",
    "apt-get": "apt",
    "ip": "iproute2",
    "ssh": "openssh-client",
    "virsh": "libvirt-clients",
    "libvirtd": "libvirt-daemon-system",
    "virtlogd": "libvirt-daemon-system",
    "qemu-system-x86_64": "qemu-system-x86",
    "dnsmasq": "dnsmasq-base",
}
# Host packages build_box installs when their binary is missing (`apt-get install`).
BUILD_TOOLS: tuple[str, ...] = ("mmdebstrap", "sfdisk", "mkfs.ext4", "extlinux", "qemu-img", "losetup", "mount")
SYSLINUX_MBR = Path("/usr/lib/syslinux/mbr/mbr.bin")  # syslinux-common
VAGRANT_KEYS_GLOB = "/usr/share/rubygems-integration/all/gems/vagrant-*/keys"  # vagrant

# Bump when the image layout or the guest configuration below changes: cached boxes are rebuilt.
BOX_LAYOUT_VERSION = 1
PARTITION_START_SECTOR = 2048  # 1 MiB, aligned
SECTOR = 512
KERNEL_ARGS = "ro console=tty0 console=ttyS0,115200n8 net.ifnames=0 biosdevname=0"


class BoxError(RuntimeError):
    """A box build step failed; the message says what ran and what to do."""


class MissingBinary(BoxError):
    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.package = BINARY_PACKAGES.get(binary)
        fix = f"apt-get install {self.package}" if self.package else "install it"
        super().__init__(f"{binary}: command not found. Fix: {fix}")


# --- running things ---------------------------------------------------------------------------------------------


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    input: str | None = None,
    timeout: float | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
    capture_stdout: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run one external command. Raises MissingBinary (naming the Debian package) or BoxError (command, exit code,
    last lines of stderr)."""
    argv = [str(c) for c in cmd]
    if shutil.which(argv[0]) is None and not os.path.isabs(argv[0]):
        raise MissingBinary(argv[0])
    try:
        proc = subprocess.run(
            argv,
            input=input,
            text=True,
            stdout=subprocess.PIPE if capture_stdout else None,
            stderr=subprocess.PIPE,
            timeout=timeout,
            env=env,
        )
    except FileNotFoundError as exc:
        raise MissingBinary(argv[0]) from exc
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        raise BoxError(f"`{' '.join(argv)}` did not finish within {timeout} s\n{_tail(err)}") from exc
    if check and proc.returncode != 0:
        raise BoxError(f"`{' '.join(argv)}` failed with exit code {proc.returncode}:\n{_tail(proc.stderr)}")
    return proc


def ensure_binaries(binaries: Iterable[str], *, install: bool = True) -> None:
    """Install (apt-get) the Debian packages of missing binaries, or raise MissingBinary for the first one."""
    missing = [b for b in binaries if shutil.which(b) is None]
    if not missing:
        return
    if not install:
        raise MissingBinary(missing[0])
    packages = sorted({BINARY_PACKAGES.get(b, b) for b in missing})
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages], env=env, timeout=1800)
    still = [b for b in missing if shutil.which(b) is None]
    if still:
        raise MissingBinary(still[0])


def vagrant_keys_dir(install: bool = True) -> Path:
    """Vagrant's keys/ directory (insecure key pair), from the vagrant Debian package."""
    found = sorted(Path("/").glob(VAGRANT_KEYS_GLOB.lstrip("/")))
    if not found and install:
        ensure_binaries(["vagrant"])
        found = sorted(Path("/").glob(VAGRANT_KEYS_GLOB.lstrip("/")))
    for keys in reversed(found):
        if (keys / "vagrant.pub").is_file():
            return keys
    raise BoxError(f"Vagrant's insecure key not found under {VAGRANT_KEYS_GLOB}. Fix: apt-get install vagrant")


# --- pure pieces (unit-tested) ------------------------------------------------------------------------------------


def box_file_name(name: str) -> str:
    return name.replace("/", "-") + ".box"


def stamp_path(out_dir: Path, name: str) -> Path:
    return out_dir / (box_file_name(name) + ".stamp.json")


def package_list(packages: Iterable[str]) -> list[str]:
    """Base packages plus the roles', sorted and without duplicates: the set that goes into the image."""
    return sorted(set(BASE_PACKAGES) | set(packages))


def build_hash(packages: Iterable[str], *, name: str = DEFAULT_NAME, size_gb: int = 4, suite: str = SUITE) -> str:
    """Everything the box depends on; same hash, same box."""
    key = {
        "layout": BOX_LAYOUT_VERSION,
        "name": name,
        "suite": suite,
        "size_gb": size_gb,
        "packages": package_list(packages),
        "disabled": sorted(DISABLED_UNITS),
        "kernel_args": KERNEL_ARGS,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def write_stamp(out_dir: Path, name: str, digest: str, packages: Iterable[str], **extra: object) -> Path:
    path = stamp_path(out_dir, name)
    data = {"hash": digest, "box": box_file_name(name), "packages": package_list(packages), **extra}
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def cached_box(out_dir: Path, name: str, digest: str) -> Path | None:
    """The box in out_dir when its stamp carries this hash and the box file is there; else None."""
    try:
        stamp = json.loads(stamp_path(out_dir, name).read_text())
    except (OSError, ValueError):
        return None
    box = out_dir / box_file_name(name)
    if isinstance(stamp, dict) and stamp.get("hash") == digest and box.is_file() and box.stat().st_size > 0:
        return box
    return None


def metadata(size_gb: int) -> dict[str, object]:
    """vagrant-libvirt's box metadata (virtual_size in GB)."""
    return {"provider": "libvirt", "format": "qcow2", "virtual_size": int(size_gb)}


def render_extlinux_conf(kernel: str, initrd: str, root_uuid: str, extra_args: str = KERNEL_ARGS) -> str:
    """extlinux.conf booting straight into the kernel, console on ttyS0 (also for extlinux itself)."""
    str(uuid.UUID(root_uuid))  # ValueError on a bad UUID, before it turns into an unbootable image
    return (
        "SERIAL 0 115200\n"
        "DEFAULT debian\n"
        "PROMPT 0\n"
        "TIMEOUT 1\n"
        "\n"
        "LABEL debian\n"
        f"  KERNEL {kernel}\n"
        f"  INITRD {initrd}\n"
        f"  APPEND root=UUID={root_uuid} {extra_args}\n"
    )


def render_fstab(root_uuid: str) -> str:
    return f"UUID={root_uuid} / ext4 defaults,errors=remount-ro 0 1\n"


BOX_VAGRANTFILE = """\
# Defaults of the halab offline box (lab/box.py). A project Vagrantfile overrides any of them.
Vagrant.configure("2") do |config|
  # Offline box: nothing to sync from the host.
  config.vm.synced_folder ".", "/vagrant", disabled: true
  config.vm.provider :libvirt do |libvirt|
    cpu_flags = File.readable?("/proc/cpuinfo") && File.read("/proc/cpuinfo") =~ /\\b(vmx|svm)\\b/
    kvm = cpu_flags && File.readable?("/dev/kvm") && File.writable?("/dev/kvm")
    libvirt.driver = kvm ? "kvm" : "qemu"
    unless kvm
      libvirt.cpu_mode = "custom"
      libvirt.cpu_model = "qemu64"
    end
    libvirt.disk_bus = "virtio"
    libvirt.nic_model_type = "virtio"
    libvirt.memory = 768
    libvirt.cpus = 1
  end
end
"""

# DHCP on the first NIC (vagrant-libvirt's management network): what Vagrant needs to find the guest.
NETWORKD_FILES: dict[str, str] = {
    "80-halab-eth0.network": """\
[Match]
Name=eth0

[Network]
DHCP=ipv4
LinkLocalAddressing=no
IPv6AcceptRA=no
IgnoreCarrierLoss=yes
ConfigureWithoutCarrier=yes
""",
    # Any other NIC Vagrant has not configured: DHCP too, but never waited for at boot.
    "81-halab-dhcp.network": """\
[Match]
Name=en* eth*

[Link]
RequiredForOnline=no

[Network]
DHCP=ipv4
LinkLocalAddressing=no
IPv6AcceptRA=no
IgnoreCarrierLoss=yes
ConfigureWithoutCarrier=yes
""",
}
# Vagrant writes /etc/systemd/network/50-vagrant-ethN.network for static addresses; networkd otherwise drops the
# address when the carrier goes, and DRBD stays StandAlone after a link-down test.
VAGRANT_NETWORK_DROPIN = """\
# halab: keep static addresses across link-down faults
[Network]
IgnoreCarrierLoss=yes
ConfigureWithoutCarrier=yes
"""
SSH_HOSTKEYS_DROPIN = """\
# halab box: host keys are made on each VM's first boot, never shipped in the box.
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
"""


def guest_files(vagrant_pub: str, hostname: str = "halab-box") -> dict[str, tuple[str, int]]:
    """Files written into the rootfs: path -> (content, mode)."""
    files: dict[str, tuple[str, int]] = {
        "etc/hostname": (hostname + "\n", 0o644),
        "etc/hosts": (f"127.0.0.1 localhost\n127.0.1.1 {hostname}\n::1 localhost ip6-localhost ip6-loopback\n", 0o644),
        "etc/sudoers.d/vagrant": ("vagrant ALL=(ALL) NOPASSWD:ALL\n", 0o440),
        "home/vagrant/.ssh/authorized_keys": (vagrant_pub.strip() + "\n", 0o600),
        "etc/systemd/system/ssh.service.d/halab-hostkeys.conf": (SSH_HOSTKEYS_DROPIN, 0o644),
        "etc/machine-id": ("", 0o444),
    }
    for fname, content in NETWORKD_FILES.items():
        files[f"etc/systemd/network/{fname}"] = (content, 0o644)
    for n in range(8):
        files[f"etc/systemd/network/50-vagrant-eth{n}.network.d/halab-carrier.conf"] = (VAGRANT_NETWORK_DROPIN, 0o644)
    return files


def sfdisk_script(start_sector: int = PARTITION_START_SECTOR) -> str:
    """One bootable Linux partition over the whole disk (MBR label, for the syslinux MBR)."""
    return f"label: dos\nunit: sectors\n\nstart={start_sector}, type=83, bootable\n"


# --- the build ----------------------------------------------------------------------------------------------------


def _mounts_under(path: Path) -> list[str]:
    """Mount points at or below path (deepest first), from /proc/self/mountinfo."""
    base = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mnt = line.split()[4].encode().decode("unicode_escape")
            if mnt == base or mnt.startswith(base.rstrip("/") + "/"):
                found.append(mnt)
    return sorted(found, key=len, reverse=True)


def _kill_chroot_processes(rootfs: Path) -> list[int]:
    """SIGKILL processes whose root is inside rootfs (a postinst that started a daemon despite policy-rc.d)."""
    base = os.path.realpath(rootfs)
    killed = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            root = os.readlink(entry / "root")
        except OSError:
            continue
        if root == base or root.startswith(base + "/"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), 9)
                killed.append(int(entry.name))
    return killed


def _remove_tree(path: Path) -> None:
    """rm -rf that never follows a leftover mount into the host (/dev, /proc, /sys bind mounts)."""
    if not path.exists():
        return
    for mnt in _mounts_under(path):
        run(["umount", "--lazy", mnt], check=False)
    left = _mounts_under(path)
    if left:
        raise BoxError(f"still mounted under {path}: {', '.join(left)}; not removing it. Fix: umount them")
    run(["rm", "-rf", "--one-file-system", str(path)])


@contextlib.contextmanager
def loop_device(image: Path, offset: int, size: int) -> Iterator[str]:
    """A loop device over one partition of a disk image (offset/sizelimit: partition nodes from `losetup -P` do
    not appear in containers); always detached again."""
    dev = run(
        ["losetup", "--find", "--show", "--offset", str(offset), "--sizelimit", str(size), str(image)]
    ).stdout.strip()
    try:
        yield dev
    finally:
        run(["losetup", "--detach", dev], check=False)


@contextlib.contextmanager
def mounted(device: str, mountpoint: Path) -> Iterator[Path]:
    mountpoint.mkdir(parents=True, exist_ok=True)
    run(["mount", device, str(mountpoint)])
    try:
        yield mountpoint
    finally:
        run(["umount", str(mountpoint)], check=False)
        if _mounts_under(mountpoint):
            run(["umount", "--lazy", str(mountpoint)], check=False)


def _mmdebstrap(rootfs: Path, packages: list[str], mirror: str | None, log) -> None:
    cmd = [
        "mmdebstrap",
        "--variant=minbase",
        "--mode=root",
        "--format=directory",
        f"--include={','.join(packages)}",
        # initramfs for a VM: generic (MODULES=most, Debian's default) is what boots under any disk bus.
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        SUITE,
        str(rootfs),
    ]
    if mirror:
        cmd.append(mirror)
    log(f"mmdebstrap: {len(packages)} packages into {rootfs}")
    try:
        run(cmd, timeout=3600)
    finally:
        killed = _kill_chroot_processes(rootfs)
        if killed:
            log(f"killed processes a postinst left running in the chroot: {killed}")


def _configure_rootfs(rootfs: Path, root_uuid: str, log) -> tuple[str, str]:
    keys = vagrant_keys_dir()
    for rel, (content, mode) in guest_files((keys / "vagrant.pub").read_text()).items():
        path = rootfs / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        path.chmod(mode)
    (rootfs / "home/vagrant/.ssh").chmod(0o700)
    (rootfs / "etc/fstab").write_text(render_fstab(root_uuid))
    dbus_id = rootfs / "var/lib/dbus/machine-id"
    if dbus_id.exists() or dbus_id.is_symlink():
        dbus_id.unlink()
        dbus_id.symlink_to("/etc/machine-id")
    for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
        key.unlink()

    run(["chroot", str(rootfs), "useradd", "--create-home", "--user-group", "--shell", "/bin/bash", "vagrant"])
    run(["chroot", str(rootfs), "usermod", "--password", "*", "vagrant"])  # no password, key only (not "locked")
    run(["chroot", str(rootfs), "chown", "-R", "vagrant:vagrant", "/home/vagrant"])

    def unit_exists(unit: str) -> bool:
        return any((rootfs / d / unit).exists() for d in ("lib/systemd/system", "usr/lib/systemd/system"))

    disable = [u for u in DISABLED_UNITS if unit_exists(u)]
    if disable:
        run(["chroot", str(rootfs), "systemctl", "disable", *disable])
    run(["chroot", str(rootfs), "systemctl", "enable", *ENABLED_UNITS])
    log(f"disabled at boot: {', '.join(disable)}")

    kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise BoxError(f"no kernel under {rootfs}/boot: linux-image-amd64 missing from the package list")
    version = kernels[-1].name.removeprefix("vmlinuz-")
    initrd = rootfs / "boot" / f"initrd.img-{version}"
    if not initrd.exists():
        raise BoxError(f"{initrd} missing: the kernel's postinst did not build an initramfs")
    conf = rootfs / "boot/extlinux/extlinux.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(render_extlinux_conf(f"/boot/vmlinuz-{version}", f"/boot/initrd.img-{version}", root_uuid))
    return f"/boot/vmlinuz-{version}", f"/boot/initrd.img-{version}"


def patch_hidden_sectors(boot_sector: bytes, start_sector: int) -> bytes:
    """Set bsHiddenSecs (offset 0x1C of the FAT-style BPB extlinux writes into the partition's first sector) to the
    partition's start: what `extlinux --install` writes itself when it can read the offset of a partition device,
    which a loop device over the partition cannot give it."""
    if len(boot_sector) != SECTOR or boot_sector[510:512] != b"\x55\xaa":
        raise BoxError("no extlinux boot sector at the start of the root partition (extlinux --install failed?)")
    return boot_sector[:0x1C] + start_sector.to_bytes(4, "little") + boot_sector[0x20:]


def _make_disk(rootfs: Path, raw: Path, size_gb: int, root_uuid: str, work: Path) -> None:
    if not SYSLINUX_MBR.is_file():
        raise BoxError(f"{SYSLINUX_MBR} missing. Fix: apt-get install syslinux-common")
    size = size_gb * 1024**3
    with open(raw, "wb") as f:
        f.truncate(size)
    run(["sfdisk", "--quiet", str(raw)], input=sfdisk_script())
    offset = PARTITION_START_SECTOR * SECTOR
    with loop_device(raw, offset, size - offset) as part:
        run(["mkfs.ext4", "-q", "-F", "-L", "halab-root", "-U", root_uuid, "-d", str(rootfs), part], timeout=1800)
        with mounted(part, work / "mnt") as mnt:
            run(["extlinux", "--install", str(mnt / "boot/extlinux")])
    with open(raw, "r+b") as f:
        f.write(SYSLINUX_MBR.read_bytes()[:440])  # boot code only: the partition table stays
        f.seek(offset)
        boot_sector = f.read(SECTOR)
        f.seek(offset)
        f.write(patch_hidden_sectors(boot_sector, PARTITION_START_SECTOR))


def _write_box(box: Path, qcow2: Path, size_gb: int) -> None:
    tmp = box.with_suffix(".box.tmp")
    with tarfile.open(tmp, "w") as tar:
        for arcname, content in (
            ("metadata.json", json.dumps(metadata(size_gb)) + "\n"),
            ("Vagrantfile", BOX_VAGRANTFILE),
        ):
            src = qcow2.parent / arcname
            src.write_text(content)
            tar.add(src, arcname=arcname)
        tar.add(qcow2, arcname="box.img")
    tmp.replace(box)


def build_box(
    out_dir: Path,
    *,
    name: str = DEFAULT_NAME,
    packages: Iterable[str] = ROLE_PACKAGES,
    size_gb: int = 4,
    mirror: str | None = None,
    force: bool = False,
    install_tools: bool = True,
    log=print,
) -> Path:
    """Build (or reuse) the box in out_dir; returns the .box path. Needs root (mmdebstrap --mode=root, losetup)."""
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    packages = list(packages)
    digest = build_hash(packages, name=name, size_gb=size_gb)
    if not force:
        hit = cached_box(out_dir, name, digest)
        if hit:
            log(f"box {name}: cached {hit} (hash {digest[:12]})")
            return hit
    if os.geteuid() != 0:
        raise BoxError("building the box needs root (mmdebstrap --mode=root, losetup, mount)")
    with progress.step(f"box build {name}"):
        progress.note("host build tools")
        ensure_binaries(BUILD_TOOLS, install=install_tools)
        if not SYSLINUX_MBR.is_file() and install_tools:
            ensure_binaries(["apt-get"])
            run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "syslinux-common"], timeout=600)
        vagrant_keys_dir(install=install_tools)

        work = out_dir / f".build-{digest[:12]}"
        _remove_tree(work)  # a killed earlier build
        work.mkdir()
        box = out_dir / box_file_name(name)
        t0 = time.monotonic()
        try:
            rootfs = work / "rootfs"
            progress.note(f"mmdebstrap: {len(package_list(packages))} packages")
            _mmdebstrap(rootfs, package_list(packages), mirror, log)
            root_uuid = str(uuid.uuid4())
            progress.note("guest configuration")
            kernel, _ = _configure_rootfs(rootfs, root_uuid, log)
            raw = work / "disk.raw"
            log(f"disk: {size_gb} GiB raw, ext4 root {root_uuid}, extlinux ({kernel})")
            progress.note(f"disk: {size_gb} GiB ext4 + extlinux")
            _make_disk(rootfs, raw, size_gb, root_uuid, work)
            _remove_tree(rootfs)
            qcow2 = work / "box.img"
            progress.note("qcow2 and the box archive")
            run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(qcow2)], timeout=1800)
            raw.unlink()
            _write_box(box, qcow2, size_gb)
        finally:
            _remove_tree(work)
    seconds = round(time.monotonic() - t0, 1)
    write_stamp(out_dir, name, digest, packages, build_seconds=seconds, size_bytes=box.stat().st_size)
    log(f"box {name}: built {box} ({box.stat().st_size / 2**20:.0f} MiB) in {seconds} s")
    return box


def add_box(path: Path, name: str = DEFAULT_NAME) -> None:
    """Register the box with Vagrant (replacing a box of the same name)."""
    with progress.step(f"vagrant box add {name}"):
        run(["vagrant", "box", "add", "--force", "--name", name, str(path)], timeout=1800)
