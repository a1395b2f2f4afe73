"""Running the box build's external commands (lab/box.py and bench/box_boot.py): `run()`, the host binaries it
needs and the Debian packages that provide them, and Vagrant's insecure key.

Separate from the build steps so every step (lab/box_rootfs.py, lab/box_disk.py, lab/box.py) and the bench share
one way to run a command: its error names the command, its exit code and the end of its stderr, and says which
Debian package provides a missing binary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

# Which Debian package provides each binary the box build (lab/box*.py) and bench/box_boot.py run.
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
VAGRANT_KEYS_GLOB = "/usr/share/rubygems-integration/all/gems/vagrant-*/keys"  # vagrant


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
