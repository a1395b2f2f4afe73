"""A pytest-testinfra backend over a Provider, so tests get a testinfra `host` per node whatever
the provider (netns: nsenter; libvirt: ssh), and read as sentences:
`hosts["node1"].file("/etc/corosync/corosync.conf").contains("two_node: 1")`."""

from __future__ import annotations

from typing import Any

from testinfra.backend import base
from testinfra.host import Host

from lab.providers.base import Provider


class ProviderBackend(base.BaseBackend):
    NAME = "halab"

    def __init__(self, provider: Provider, node: str, **kwargs: Any) -> None:
        self.provider = provider
        self.node = node
        super().__init__(node, **kwargs)

    def get_pytest_id(self) -> str:
        return f"halab://{self.node}"

    def run(self, command: str, *args: str, **kwargs: Any) -> base.CommandResult:
        cmd = self.get_command(command, *args)
        r = self.provider.run(self.node, cmd, timeout=60)
        return self.result(r.rc, self.encode(cmd), r.stdout.encode(), r.stderr.encode())


def hosts(provider: Provider) -> dict[str, Host]:
    return {node: Host(ProviderBackend(provider, node)) for node in provider.scenario.nodes}
