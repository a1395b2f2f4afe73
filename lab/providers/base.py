"""The Provider protocol: what every way of running a scenario's nodes must offer.

Providers know nodes, networks and faults; they know nothing of roles (that is provision/).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from lab.scenario import Scenario


class ProviderError(RuntimeError):
    """A provider could not do what was asked; the message says what to fix."""


class Unsupported(ProviderError):
    """The provider cannot offer this at all (e.g. DRBD on netns); tests skip on it."""


@dataclass(frozen=True)
class Result:
    node: str
    cmd: str
    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def check(self) -> Result:
        if self.rc != 0:
            raise ProviderError(
                f"{self.node}: `{self.cmd}` exited {self.rc}\nstdout: {self.stdout[-2000:]}\n"
                f"stderr: {self.stderr[-2000:]}"
            )
        return self


@runtime_checkable
class Provider(Protocol):
    name: str
    scenario: Scenario
    state_dir: Path
    # How often the observer samples every node's addresses and mounts (what one look costs decides it).
    observe_period_s: float
    # Whether every node's clock is the harness's and the client's (one kernel): only then may a time in a node's
    # log be compared with one in the client's history.
    shared_clock: bool
    # Whether shared_directory works: a directory every node sees (netns: the host's; not built on libvirt yet).
    shared_directories: bool

    @property
    def emulated(self) -> bool:
        """Whether the nodes run on an emulated CPU (TCG, ~10x slower): no timer-derived deadline holds for what
        their own software does, and the harness's looks into them compete with it for the host's CPU."""
        ...

    # lifecycle
    def up(self) -> None: ...
    def down(self) -> None: ...
    def is_up(self) -> bool: ...
    def is_running(self, node: str) -> bool: ...

    # commands
    def run(
        self,
        node: str,
        cmd: str,
        *,
        timeout: float = 60.0,
        check: bool = False,
        env: Mapping[str, str] | None = None,
        input: bytes | None = None,
    ) -> Result: ...
    def command_argv(self, node: str, argv: Sequence[str], *, tty: bool = False) -> list[str]:
        """A host command line that runs `argv` in the node with the caller's stdio (`halab exec`/`shell`)."""
        ...

    def start_daemon(self, node: str, cmd: str, log: str) -> None:
        """Start a long-running daemon inside the node, detached (the node's init adopts it)."""
        ...

    def put(
        self, node: str, path: str, content: str | bytes, *, mode: int = 0o644, owner: str = "root:root"
    ) -> None: ...
    def spawn(self, node: str, argv: Sequence[str], *, log: Path) -> subprocess.Popen[bytes]:
        """Start a long-running process attached to the node's network (workloads)."""
        ...

    # storage: a block device every node of `service` can reach (DRBD on VMs, loop on netns)
    def shared_disk(self, service: str, size_mb: int) -> str: ...
    def shared_directory(self, name: str) -> str:
        """A directory every node sees at the same path and that outlives any node (a real cloud's NFS or Ceph):
        its path, made empty for a new lab."""
        ...

    def mounts(self, node: str) -> list[tuple[str, str]]: ...
    def addresses(self, node: str) -> list[str]: ...
    def observe(self, node: str) -> tuple[list[str], list[tuple[str, str]]]:
        """(addresses, mounts) of a running node, in one look."""
        ...

    def memory_kib(self, node: str) -> dict[str, int]: ...
    def shared_disks(self) -> dict[str, str]: ...

    # faults
    def crash(self, node: str) -> None: ...
    def restart(self, node: str) -> None: ...
    def freeze(self, node: str) -> None: ...
    def thaw(self, node: str) -> None: ...
    def kill_service(self, node: str, process: str) -> None: ...
    def stop_service(self, node: str, process: str, timeout: float = 30.0) -> None: ...
    def cut(self, node: str, network: str) -> None: ...
    def restore(self, node: str, network: str) -> None: ...
    def reset(self, node: str) -> None: ...
    def poweroff(self, node: str) -> None: ...
    def port(self, node: str, network: str) -> str:
        """The node's port on the network's bridge, which filter rules name."""
        ...

    def filter_add(self, name: str, rules: Sequence[str]) -> None:
        """Install one fault's nftables bridge rules as its own table (replacing one of the same name)."""
        ...

    def filter_remove(self, name: str) -> None: ...
    def heal(self) -> None:
        """Undo every filter and cut: the network as built (teardown, `halab heal --all`)."""
        ...
