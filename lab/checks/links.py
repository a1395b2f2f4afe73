"""corosync's link state per link and per peer, from `corosync-cfgtool -s` (knet):

    LINK ID 0 udp
            addr    = 192.0.2.1
            status:
                    nodeid:          1:     localhost
                    nodeid:          2:     connected
"""

from __future__ import annotations

import re

_LINK = re.compile(r"^LINK ID (\d+)")
_PEER = re.compile(r"^\s*nodeid:\s*(\d+):\s*(\S+)")


def link_states(cfgtool: str) -> dict[int, dict[int, str]]:
    """link id -> {node id -> state} (`localhost` for the node itself, `connected`, `disconnected`, ...)."""
    out: dict[int, dict[int, str]] = {}
    link: int | None = None
    for line in cfgtool.splitlines():
        if m := _LINK.match(line.strip()):
            link = int(m.group(1))
            out[link] = {}
        elif (m := _PEER.match(line)) and link is not None:
            out[link][int(m.group(1))] = m.group(2)
    return out


def not_connected(cfgtool: str, links: int, peers: int) -> list[str]:
    """What is wrong for a node that should see `peers` other nodes connected on each of `links` links."""
    states = link_states(cfgtool)
    problems = [f"link {i} missing" for i in range(links) if i not in states]
    for link, peers_of in states.items():
        others = {n: s for n, s in peers_of.items() if s != "localhost"}
        if len(others) != peers:
            problems.append(f"link {link}: {len(others)} peers listed, expected {peers}")
        problems += [f"link {link}: node {n} {s}" for n, s in others.items() if s != "connected"]
    return problems
