"""Provider selection: LAB_PROVIDER=netns|libvirt|auto."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from lab.providers.base import Provider, ProviderError, Unsupported
from lab.scenario import Scenario

__all__ = ["Provider", "ProviderError", "Unsupported", "choose", "make_provider"]


def kvm_usable() -> tuple[bool, str]:
    """KVM is usable when the CPU advertises vmx/svm and /dev/kvm opens read-write; the device node
    alone is not enough (a nested-virt variant here has one and hangs stock guest kernels)."""
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if " vmx" not in flags and " svm" not in flags:
        return False, "the CPU advertises neither vmx nor svm"
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError as exc:
        return False, f"/dev/kvm cannot be opened read-write ({exc.strerror})"
    return True, "vmx/svm present and /dev/kvm usable"


def vagrant_libvirt() -> tuple[bool, str]:
    if shutil.which("vagrant") is None:
        return False, "vagrant is not installed"
    p = subprocess.run(["vagrant", "plugin", "list"], capture_output=True, text=True, timeout=60)
    if "vagrant-libvirt" not in p.stdout:
        return False, "the vagrant-libvirt plugin is not installed"
    return True, "vagrant with vagrant-libvirt"


def choose(requested: str | None = None) -> tuple[str, str]:
    """Return (provider name, why)."""
    requested = (requested or os.environ.get("LAB_PROVIDER") or "auto").strip()
    if requested in ("netns", "libvirt"):
        return requested, f"LAB_PROVIDER={requested}"
    if requested != "auto":
        raise ProviderError(f"LAB_PROVIDER={requested!r} is not a provider: use netns, libvirt or auto")
    vl_ok, vl_why = vagrant_libvirt()
    kvm_ok, kvm_why = kvm_usable()
    if not (vl_ok and kvm_ok):
        return "netns", f"auto: netns, since libvirt needs vagrant-libvirt and KVM: {vl_why if not vl_ok else kvm_why}"
    return "libvirt", f"auto: {vl_why} and KVM ({kvm_why})"


def make_provider(name: str, scenario: Scenario, lab: str | None = None) -> Provider:
    if name == "netns":
        from lab.providers.netns import NetnsProvider

        return NetnsProvider(scenario, lab=lab)
    if name == "libvirt":
        from lab.providers.libvirt import LibvirtProvider

        return LibvirtProvider(scenario, lab=lab)
    raise ProviderError(f"unknown provider {name!r}: use netns or libvirt")
