"""The box's disk image: one bootable ext4 partition on a raw disk (sfdisk, `mkfs.ext4 -d` from the rootfs),
extlinux in it and the syslinux MBR in front of it; and the mount and loop-device handling that keeps a build
from ever reaching into the host (leftover mounts, `rm -rf` of a work directory).

Separate from the rootfs (lab/box_rootfs.py): this only turns a finished rootfs directory into a bootable disk.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from lab.box_commands import BoxError, run

SYSLINUX_MBR = Path("/usr/lib/syslinux/mbr/mbr.bin")  # syslinux-common
PARTITION_START_SECTOR = 2048  # 1 MiB, aligned
SECTOR = 512


# --- pure pieces (unit-tested) ------------------------------------------------------------------------------------


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
