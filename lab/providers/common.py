"""Shell commands both providers send into a node: the same text whether it runs through nsenter or SSH."""

from __future__ import annotations

import json
import shlex

from lab.providers.base import Provider
from lab.wait import until


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


def stop_service_via(provider: Provider, node: str, process: str, timeout: float) -> None:
    """SIGTERM, as an orderly `systemctl stop` would, and wait until every such process is gone."""
    from lab.providers.base import ProviderError

    q = shlex.quote(process)
    if provider.run(node, f"pkill -TERM -x {q}", timeout=10).rc != 0:
        raise ProviderError(f"{node}: no process named {process} to stop")
    until(
        lambda: provider.run(node, f"pgrep -x {q}", timeout=10).rc == 1,
        timeout=timeout,
        what=f"{process} on {node} to exit after SIGTERM",
        seen=lambda: provider.run(node, f"pgrep -a -x {q}").stdout,
    )


def partition_script(table: str, side_a: list[str], side_b: list[str], *, one_way: bool) -> str:
    """nftables (bridge family) rules dropping frames from ports `side_a` to ports `side_b` (and back unless
    one_way): a partition on a bridge, whatever made the ports (veths of the netns fabric, libvirt's taps)."""
    a = ", ".join(json.dumps(p) for p in side_a)
    b = ", ".join(json.dumps(p) for p in side_b)
    rules = [f"iifname {{ {a} }} oifname {{ {b} }} drop"]
    if not one_way:
        rules.append(f"iifname {{ {b} }} oifname {{ {a} }} drop")
    body = "".join(f"  {r}\n" for r in rules)
    head = f"table bridge {table} {{\n chain forward {{\n  type filter hook forward priority 0; policy accept;\n"
    return f"{head}{body} }}\n}}\n"
