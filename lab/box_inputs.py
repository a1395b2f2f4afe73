"""What the offline box is built from, and the stamp that records it: the package lists, the units disabled at
boot, the kernel command line, and the hash of them all.

Separate from the build itself (lab/box.py) because these are pure and unit-tested: a second build with the same
inputs (same hash in the stamp next to the box) returns the existing box without running anything.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

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
    # Keystone (provision/keystone.py) and the stock `openstack` CLI the tests run on the client node
    "python3-keystone",
    "uwsgi-core",
    "uwsgi-plugin-python3",
    "python3-openstackclient",
    "python3-glance",
    # the rest of ch. 4's g_services_api (provision/api_cluster.py): Cinder's and Neutron's APIs, Ceilometer's agent
    "python3-cinder",
    "python3-neutron",
    "python3-ceilometer",
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

# Bump when the image layout or the guest configuration below changes: cached boxes are rebuilt.
BOX_LAYOUT_VERSION = 1
KERNEL_ARGS = "ro console=tty0 console=ttyS0,115200n8 net.ifnames=0 biosdevname=0"


# --- pure pieces (unit-tested) ------------------------------------------------------------------------------------


def box_file_name(name: str) -> str:
    return name.replace("/", "-") + ".box"


def stamp_path(out_dir: Path, name: str) -> Path:
    return out_dir / (box_file_name(name) + ".stamp.json")


def package_list(packages: Iterable[str]) -> list[str]:
    """Base packages plus the roles', sorted and without duplicates: the set that goes into the image."""
    return sorted(set(BASE_PACKAGES) | set(packages))


# The system users the OpenStack services run as (provision/keystone.py, glance.py, cinder.py, neutron.py,
# ceilometer.py), made as their Debian packages would: the lab installs only their python3-* libraries.
SERVICE_USERS: tuple[str, ...] = ("keystone", "glance", "cinder", "neutron", "ceilometer")


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
        "users": list(SERVICE_USERS),
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
