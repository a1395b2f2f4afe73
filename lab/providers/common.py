"""What both providers share: the shell commands they send into a node (the same text whether it runs through
nsenter or SSH), their state file, and host-side helpers (commands, namespaces, nftables bridge tables)."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from lab.providers.base import ProviderError, Result
from lab.wait import until


class Runs(Protocol):
    """What the helpers below need of a provider: a shell command in a node."""

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


def default_state_root() -> Path:
    # Not under /tmp (a netns node's private mounts hide it) nor under /var/lib (each netns node overlays it).
    return Path(os.environ.get("HALAB_STATE_DIR", "/var/tmp/halab"))


class LabState:
    """A provider's state file: what `halab down` needs to clean up after a harness that was killed."""

    state_dir: Path
    state_file: Path
    _state: dict

    def _fresh_state(self) -> dict:
        raise NotImplementedError

    def _load_state(self) -> dict:
        if self.state_file.exists():
            self._state_mtime = self.state_file.stat().st_mtime_ns
            return json.loads(self.state_file.read_text())
        return self._fresh_state()

    def _refresh_state(self) -> None:
        """Re-read the state another process changed (`halab fault crash` and `halab heal` while a recorder or
        `status --watch` runs): a node restarted elsewhere has a new PID 1. Every change here is saved at once."""
        try:
            mtime = self.state_file.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if mtime != getattr(self, "_state_mtime", None):
            self._state = self._load_state()

    def _save_state(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._state, indent=2))
        tmp.replace(self.state_file)  # atomic: a kill mid-write leaves the previous state, never half of one
        self._state_mtime = self.state_file.stat().st_mtime_ns


def sh(*argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a host command; with check, a failure raises naming the command and what it printed."""
    p = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise ProviderError(f"`{' '.join(argv)}` exited {p.returncode}: {p.stderr.strip() or p.stdout.strip()}")
    return p


def starttime(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks since boot): with the PID, a process's identity."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except OSError:
        return None


def signal_pid(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def put_command(path: str, mode: int, owner: str) -> str:
    """Write stdin to `path`; umask first, so a secret is never readable by others, not even for a moment."""
    q = shlex.quote(path)
    return f'umask 077; mkdir -p "$(dirname {q})" && cat > {q} && chown {owner} {q} && chmod {mode:o} {q}'


def daemon_command(cmd: str, log: str) -> str:
    """Start a long-running daemon detached from the caller (the node's init adopts it)."""
    return f"setsid -f sh -c {shlex.quote('exec ' + cmd)} </dev/null >>{log} 2>&1"


def kill_command(process: str) -> str:
    """kill -9 every process of that name at once: stopped first, so none of them (a keepalived VRRP child watching
    its parent, say) gets to run between the kills and say goodbye."""
    q = shlex.quote(process)
    return f"pkill -STOP -x {q} && pkill -KILL -x {q}"


def stop_service_via(provider: Runs, node: str, process: str, timeout: float) -> None:
    """SIGTERM, as an orderly `systemctl stop` would, and wait until every such process is gone."""
    q = shlex.quote(process)
    if provider.run(node, f"pkill -TERM -x {q}", timeout=10).rc != 0:
        raise ProviderError(f"{node}: no process named {process} to stop")
    until(
        lambda: provider.run(node, f"pgrep -x {q}", timeout=10).rc == 1,
        timeout=timeout,
        what=f"{process} on {node} to exit after SIGTERM",
        seen=lambda: provider.run(node, f"pgrep -a -x {q}").stdout,
    )


def ipv4_addresses(ip_addr_output: str) -> list[str]:
    """The addresses in `ip -o -4 addr show` output."""
    return [ln.split()[3].split("/")[0] for ln in ip_addr_output.splitlines() if len(ln.split()) > 3]


def spawn_in_netns(netns: str, argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    """A long-running host process in a network namespace (a workload), its output appended to `log`."""
    with open(log, "ab") as fh:
        return subprocess.Popen(
            ["ip", "netns", "exec", netns, *argv],
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=fh,
            start_new_session=True,
        )


def bridge_filter(table: str, rules: Sequence[str]) -> str:
    """An nftables (bridge family) table dropping what `rules` match on a bridge's forward path, whatever made
    its ports (veths of the netns fabric, libvirt's taps): one table per fault, so each heals on its own."""
    body = "".join(f"  {r}\n" for r in rules)
    head = f"table bridge {table} {{\n chain forward {{\n  type filter hook forward priority 0; policy accept;\n"
    return f"{head}{body} }}\n}}\n"
