"""Guide ch. 2-3 under the `hardened` profile: what the guide leaves out, added and measured.
(Fencing needs the libvirt provider; on netns the hardened profile adds the connectivity check only.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab import bounds
from lab.fixtures import assert_checks, make_lab, report_failback
from lab.session import Lab
from provision import fencing
from tests.acceptance.fenced_freeze import fenced_freeze

pytestmark = pytest.mark.active_passive


@pytest.fixture(scope="module")
def lab(provider: str) -> Iterator[Lab]:
    yield from make_lab("active-passive", "hardened", provider)


@pytest.fixture(scope="module")
def fence_device(provider: str) -> None:
    """Skip before the lab is built where no provider-side fence device exists (netns): a hardened lab provisioned
    only to skip would cost a run minutes. Listed before `lab` in a test's arguments, it is set up first."""
    if provider != "libvirt":
        pytest.skip(
            f"STONITH needs a fence device; the {provider} provider has none: run it with "
            "LAB_PROVIDER=libvirt (fence_virsh against the lab's libvirtd)"
        )


def ping_reaction_ms(lab: Lab) -> int:
    """How long p_ping may take to turn a dead ring0 into pingd=0: its monitor interval, each
    attempt's timeout, then attrd's dampen delay before the attribute is written."""
    cib = lab.pcmk.cib_resources()
    interval = bounds.op_ms(cib, "p_ping", "monitor", "interval")
    import xml.etree.ElementTree as ET

    params = {
        nv.get("name"): nv.get("value")
        for p in ET.fromstring(cib).iter("primitive")
        if p.get("id") == "p_ping"
        for nv in p.iter("nvpair")
    }
    # ocf:pacemaker:ping's own defaults where the CIB sets nothing: attempts 3, timeout 2 s, dampen 5 s
    attempts = int(params.get("attempts", "3"))
    timeout_ms = bounds.duration_ms(params.get("timeout", "2"))
    return interval + attempts * timeout_ms + bounds.duration_ms(params.get("dampen", "5s"))


def test_ring0_cut_moves_the_groups_to_the_connected_node(lab: Lab) -> None:
    node = lab.settle()[lab.scenario.services["mysql"].group or ""]
    other = next(n for n in lab.cluster_nodes if n != node)
    bound = ping_reaction_ms(lab) + lab.pcmk.failover_bound_ms("mysql", stop_first=True)
    with lab.trial("cut-ring0-hardened") as t:
        t.fault("cut", node, network=lab.scenario.network_for("management"))
        t.settle(on=other, avoid=node, timeout=bound / 1000)
        # ring0 back under load: what its return does (pingd back to 1 there, a move back or none) is the heal's
        t.clients_back()
        t.heal("cut", node, network=lab.scenario.network_for("management"))
        res = t.finish(bounds_ms={"mysql": bound})
    ev = next(e for e in res.events if e.service == "mysql" and e.fault == "cut")
    assert ev.vip_to == [other], f"{ev.vip} should be on {other}, holders {ev.vip_to}"
    report_failback(t, res, node)
    assert_checks(res)


@pytest.mark.smoke  # tox -e libvirt-fencing runs it (netns skips it: no fence device); CI's libvirt smoke runs the
# same trial on the guide suite's cluster with these fence devices switched on (test_active_passive.py)
def test_frozen_active_node_is_fenced_before_the_peer_takes_over(fence_device: None, lab: Lab) -> None:
    """The contrast with the guide profile's freeze test (a split-brain there): the peer loses the frozen node, powers
    it off through fence_virsh, and only then starts its groups. No double VIP, no double mount."""
    if not fencing.enabled(lab.ctx):  # on libvirt (fence_device let it run) fence_virsh is the lab's own
        pytest.fail("the hardened libvirt lab has no fence device: provision/fencing.py did not configure stonith")
    fenced_freeze(lab, "freeze-fenced")
