"""Role fencing (hardened profile, providers that can fence): STONITH with fence_virsh against the host's libvirt.

The guide runs without fencing (stonith-enabled=false, no-quorum-policy=ignore), which is how a frozen node ends up
holding its VIP while the peer takes it too (test_active_passive.py shows that split-brain). With fencing, the peer
powers the lost node off before it starts anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from lab.providers.base import ProviderError
from provision.context import Context, render

if TYPE_CHECKING:
    from lab.providers.fence_host import FenceTarget

KEY = "/etc/halab/fence_key"
# Pacemaker's default stonith-timeout: how long a fencing action may take before it counts as failed.
STONITH_TIMEOUT_S = 60


@runtime_checkable
class Fencer(Protocol):
    """A provider that can fence its nodes (libvirt): fence_virsh's way in, and the domain of each node."""

    def fence_target(self) -> FenceTarget: ...
    def domain_name(self, node: str) -> str: ...


def _fencer(ctx: Context) -> Fencer:
    """The provider, where enabled() said it can fence."""
    if not isinstance(ctx.provider, Fencer):
        raise ProviderError(f"the {ctx.provider.name} provider has no fence device (fence_target, domain_name)")
    return ctx.provider


@dataclass(frozen=True)
class Device:
    node: str
    plug: str
    address: str
    user: str


def available(ctx: Context) -> bool:
    return hasattr(ctx.provider, "fence_target")


def enabled(ctx: Context) -> bool:
    """The profile asks for STONITH and the provider has a fence device for it."""
    return ctx.opts.stonith and available(ctx)


def install(ctx: Context, node: str) -> None:
    """The key fence_virsh logs in with, and the host key it must trust (fence agents answer no prompts)."""
    target = _fencer(ctx).fence_target()
    ctx.provider.put(node, KEY, target.private_key, mode=0o600)
    ctx.provider.put(node, "/root/.ssh/known_hosts", target.known_host + "\n", mode=0o600)


def crm(ctx: Context) -> str:
    fencer = _fencer(ctx)
    target = fencer.fence_target()
    devices = [Device(n, fencer.domain_name(n), target.address, target.user) for n in ctx.cluster_nodes]
    return render("fencing.crm.j2", stonith=devices, key=KEY)


def note(ctx: Context) -> str | None:
    if ctx.opts.stonith and not available(ctx):
        return (
            f"profile {ctx.profile} asks for STONITH, but the {ctx.provider.name} provider has no fence device: "
            "stonith-enabled stays false here (fence_virsh runs on LAB_PROVIDER=libvirt)"
        )
    return None
