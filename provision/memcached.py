"""Role memcached: guide ch. 9 "Memcached", one independent instance per controller; clients hash over all."""

from __future__ import annotations

from lab.scenario import Node, Scenario
from provision.context import Context

PORT = 11211
MEMORY_MB = 16  # lab-sized (Debian's default is 64)
LOG = "/var/log/halab/memcached.log"


def _nodes(scenario: Scenario) -> list[Node]:
    return scenario.nodes_with_role("memcached")


def _address(scenario: Scenario, node: Node) -> str:
    # The network the API VIP lives on, else the node's first one.
    nets = [v.network for v in scenario.vips.values() if v.network in node.addresses]
    return str(node.addresses[nets[0]] if nets else next(iter(node.addresses.values())))


def command(scenario: Scenario, node: str) -> str:
    # -U 0: no UDP listener (memcached 1.6 defaults to off; written out, it was the amplification vector).
    addr = _address(scenario, scenario.nodes[node])
    return f"/usr/bin/memcached -u memcache -l {addr} -p {PORT} -U 0 -m {MEMORY_MB}"


def start(ctx: Context, node: str) -> None:
    ctx.provider.run(node, "mkdir -p /var/log/halab", check=True, timeout=15)
    ctx.provider.start_daemon(node, command(ctx.scenario, node), LOG)


def client_servers(scenario: Scenario) -> list[str]:
    """The guide's `memcached_servers = controller1:11211,controller2:11211`, by address."""
    return [f"{_address(scenario, n)}:{PORT}" for n in _nodes(scenario)]
