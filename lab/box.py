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

This module holds the build's order of steps, the box archive and `vagrant box add`; the steps live beside it:
  box_commands.py  run(), the host binaries and their Debian packages, Vagrant's insecure key
  box_inputs.py    package lists, units disabled at boot, kernel arguments; the build hash and its stamp
  box_rootfs.py    mmdebstrap and the guest's configuration (files, vagrant user, units, extlinux.conf)
  box_disk.py      the raw disk: partition, ext4 from the rootfs, extlinux and the MBR; mounts and loop devices
Their names are re-exported here, so `from lab.box import ...` keeps working.
"""

from __future__ import annotations

import json
import os
import tarfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from lab import progress
from lab.box_commands import (
    BINARY_PACKAGES,
    VAGRANT_KEYS_GLOB,
    BoxError,
    MissingBinary,
    ensure_binaries,
    run,
    vagrant_keys_dir,
)
from lab.box_disk import (
    PARTITION_START_SECTOR,
    SECTOR,
    SYSLINUX_MBR,
    _make_disk,
    _remove_tree,
    loop_device,
    mounted,
    patch_hidden_sectors,
    sfdisk_script,
)
from lab.box_inputs import (
    BASE_PACKAGES,
    BOX_LAYOUT_VERSION,
    DEFAULT_NAME,
    DISABLED_UNITS,
    ENABLED_UNITS,
    KERNEL_ARGS,
    ROLE_PACKAGES,
    SUITE,
    box_file_name,
    build_hash,
    cached_box,
    package_list,
    stamp_path,
    write_stamp,
)
from lab.box_rootfs import (
    NETWORKD_FILES,
    SSH_HOSTKEYS_DROPIN,
    VAGRANT_NETWORK_DROPIN,
    _configure_rootfs,
    _mmdebstrap,
    guest_files,
    render_extlinux_conf,
    render_fstab,
)

__all__ = [
    "BASE_PACKAGES",
    "BINARY_PACKAGES",
    "BOX_LAYOUT_VERSION",
    "BOX_VAGRANTFILE",
    "BUILD_TOOLS",
    "DEFAULT_NAME",
    "DISABLED_UNITS",
    "ENABLED_UNITS",
    "KERNEL_ARGS",
    "NETWORKD_FILES",
    "PARTITION_START_SECTOR",
    "ROLE_PACKAGES",
    "SECTOR",
    "SSH_HOSTKEYS_DROPIN",
    "SUITE",
    "SYSLINUX_MBR",
    "VAGRANT_KEYS_GLOB",
    "VAGRANT_NETWORK_DROPIN",
    "BoxError",
    "MissingBinary",
    "add_box",
    "box_file_name",
    "build_box",
    "build_hash",
    "cached_box",
    "ensure_binaries",
    "guest_files",
    "loop_device",
    "metadata",
    "mounted",
    "package_list",
    "patch_hidden_sectors",
    "render_extlinux_conf",
    "render_fstab",
    "run",
    "sfdisk_script",
    "stamp_path",
    "vagrant_keys_dir",
    "write_stamp",
]

# Host packages build_box installs when their binary is missing (`apt-get install`).
BUILD_TOOLS: tuple[str, ...] = ("mmdebstrap", "sfdisk", "mkfs.ext4", "extlinux", "qemu-img", "losetup", "mount")


def metadata(size_gb: int) -> dict[str, object]:
    """vagrant-libvirt's box metadata (virtual_size in GB)."""
    return {"provider": "libvirt", "format": "qcow2", "virtual_size": int(size_gb)}


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
