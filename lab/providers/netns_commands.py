"""netns provider, commands: everything runs in the node through nsenter on its PID 1 (workloads only in its
network namespace)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from lab.providers.base import Result
from lab.providers.common import daemon_command, put_command, spawn_in_netns
from lab.providers.netns_node import DOWN_S, NODE_PATH, NetnsNode


class NetnsCommands(NetnsNode):
    def run(
        self,
        node: str,
        cmd: str,
        *,
        timeout: float = 60.0,
        check: bool = False,
        env: Mapping[str, str] | None = None,
        input: bytes | None = None,
    ) -> Result:
        full_env = {"PATH": NODE_PATH, "LANG": "C.UTF-8", "HOME": "/root", **(env or {})}
        p = subprocess.Popen(
            self._enter(node) + ["sh", "-c", cmd],
            stdin=subprocess.PIPE if input else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,
            start_new_session=True,
        )
        try:
            out, err = p.communicate(input=input, timeout=timeout)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            _killpg(p.pid)
            try:
                out, err = p.communicate(timeout=DOWN_S)
            except subprocess.TimeoutExpired:  # a grandchild outside the group still holds the pipes
                out, err = b"", b""
            rc, err = 124, err + f"\n(timed out after {timeout:.0f}s)".encode()
        res = Result(node, cmd, rc, out.decode(errors="replace"), err.decode(errors="replace"))
        return res.check() if check else res

    def command_argv(self, node: str, argv: Sequence[str], *, tty: bool = False) -> list[str]:
        """A host command line that runs `argv` inside the node with the caller's stdin/stdout/stderr (and
        terminal): `halab exec` and `halab shell` exec it, so output and exit code pass through untouched."""
        env = ["env", f"PATH={NODE_PATH}", "LANG=C.UTF-8", "HOME=/root", f"TERM={os.environ.get('TERM', 'dumb')}"]
        return self._enter(node) + env + list(argv)

    def put(self, node: str, path: str, content: str | bytes, *, mode: int = 0o644, owner: str = "root:root") -> None:
        data = content.encode() if isinstance(content, str) else content
        self.run(node, put_command(path, mode, owner), input=data, check=True, timeout=30)

    def start_daemon(self, node: str, cmd: str, log: str) -> None:
        """Start a long-running daemon inside the node, detached; tini adopts it."""
        self.run(node, daemon_command(cmd, log), check=True, timeout=15)

    def spawn(self, node: str, argv: Sequence[str], *, log: Path) -> subprocess.Popen[bytes]:
        return spawn_in_netns(self.netns(node), argv, log)


def _killpg(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
