"""Guide ch. 2-3 under the `hardened` profile: what the guide leaves out, added and measured.
(Fencing needs the libvirt provider; on netns the hardened profile adds the connectivity check.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab import bounds
from lab.fixtures import assert_checks, make_lab
from lab.session import Lab

pytestmark = pytest.mark.active_passive


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    yield from make_lab("active-passive", "hardened")


def ping_reaction_ms(lab: Lab) -> int:
    """How long p_ping may take to turn a dead ring0 into pingd=0: its monitor interval, each
    attempt's timeout, then attrd's dampen delay before the attribute is written."""
    cib = lab.cib_resources()
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
    node = lab.settle()["g_mysql"]
    other = next(n for n in lab.cluster_nodes if n != node)
    bound = ping_reaction_ms(lab) + lab.failover_bound_ms("mysql", stop_first=True)
    with lab.trial("cut-ring0-hardened") as t:
        t.fault("cut", node, network="ring0")
        lab.settle(on=other, avoid=node, timeout=bound / 1000)
        res = t.finish(bounds_ms={"mysql": bound}, settle_avoid=node)
    t.heal("cut", node, network="ring0")
    ev = next(e for e in res.events if e.service == "mysql")
    assert ev.vip_to == [other], f"{ev.vip} should be on {other}, holders {ev.vip_to}"
    assert_checks(res)
