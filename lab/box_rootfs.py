"""The box's root filesystem: mmdebstrap (minbase) installs the packages (lab/box_inputs.py), then the guest is
configured for Vagrant: its files (network, SSH, sudo, the insecure key), the vagrant user, the units enabled and
disabled at boot, and extlinux.conf for the newest kernel.

Separate from the disk image (lab/box_disk.py): this is everything inside the rootfs directory, before it goes
into a partition.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from lab.box_commands import BoxError, run, vagrant_keys_dir
from lab.box_inputs import DISABLED_UNITS, ENABLED_UNITS, KERNEL_ARGS, SERVICE_USERS, SUITE

# --- pure pieces (unit-tested) ------------------------------------------------------------------------------------


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


# --- the build ----------------------------------------------------------------------------------------------------


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
    for user in SERVICE_USERS:  # the OpenStack services' own users (provision/keystone.py), as their packages make
        run(["chroot", str(rootfs), "useradd", "--system", "--user-group", "--no-create-home", "--shell",
             "/usr/sbin/nologin", user])  # fmt: skip

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
