"""lab/checks/links.py: one peer down on one link is found, not hidden by a count over the whole output."""

from __future__ import annotations

import pytest

from lab.checks.links import link_states, not_connected

pytestmark = pytest.mark.unit

HEALTHY = """Local node ID 1, transport knet
LINK ID 0 udp
\taddr\t= 192.168.42.1
\tstatus:
\t\tnodeid:          1:\tlocalhost
\t\tnodeid:          2:\tconnected
LINK ID 1 udp
\taddr\t= 10.0.42.100
\tstatus:
\t\tnodeid:          1:\tlocalhost
\t\tnodeid:          2:\tconnected
"""
RING1_CUT = HEALTHY[: HEALTHY.rindex("connected")] + "disconnected\n"


def test_every_link_and_peer_is_read() -> None:
    assert link_states(HEALTHY) == {0: {1: "localhost", 2: "connected"}, 1: {1: "localhost", 2: "connected"}}
    assert not_connected(HEALTHY, links=2, peers=1) == []


def test_a_link_down_to_one_peer_is_found() -> None:
    # the old check counted "connected" in the whole text: 2 here ("disconnected" contains it), so it passed
    assert RING1_CUT.count("connected") >= 2
    assert not_connected(RING1_CUT, links=2, peers=1) == ["link 1: node 2 disconnected"]


def test_a_missing_link_or_peer_is_found() -> None:
    only_link0 = HEALTHY[: HEALTHY.index("LINK ID 1")]
    assert not_connected(only_link0, links=2, peers=1) == ["link 1 missing"]
    assert not_connected(HEALTHY, links=2, peers=2) == [
        "link 0: 1 peers listed, expected 2", "link 1: 1 peers listed, expected 2"]  # fmt: skip
