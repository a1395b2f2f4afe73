"""Role galera, status queries: `SHOW STATUS LIKE 'wsrep%'` parsed and asked of a node, whether mariadbd runs,
and waiting until a node (or all of them) is Synced in a primary component.

Separate from starting and recovering nodes (provision/galera.py, galera_recovery.py), which wait on these, as
do the active/active playbook and its tests.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from lab.providers.base import ProviderError
from lab.wait import until
from provision.context import Context
from provision.galera_config import LOG, GaleraError, galera_nodes

# ----------------------------------------------------------------------------------------------- pure: parsing


def parse_status(text: str) -> dict[str, str]:
    """`mysql -N -B -e "SHOW STATUS LIKE 'wsrep%'"` output (name TAB value per line) as a dict."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("\t")
        if sep and name:
            out[name] = value
    return out


def is_member(st: Mapping[str, str], size: int | None = None) -> bool:
    """Synced in a primary component (of `size` members, if given)."""
    return (
        st.get("wsrep_cluster_status") == "Primary"
        and st.get("wsrep_local_state_comment") == "Synced"
        and st.get("wsrep_ready") == "ON"
        and (size is None or st.get("wsrep_cluster_size") == str(size))
    )


def summary(st: Mapping[str, str]) -> str:
    if not st:
        return "mysqld down"
    return (
        f"size={st.get('wsrep_cluster_size')} {st.get('wsrep_cluster_status')} "
        f"{st.get('wsrep_local_state_comment')} seqno={st.get('wsrep_last_committed')}"
    )


# ----------------------------------------------------------------------------------------------- daemons


def status(ctx: Context, node: str) -> dict[str, str]:
    """SHOW STATUS LIKE 'wsrep%' through the node's socket; {} when mysqld does not answer (down, crashed node,
    still in SST, or frozen past the timeout)."""
    try:
        r = ctx.provider.run(
            node,
            "mysql --protocol=socket -uroot -N -B --connect-timeout=2 -e \"SHOW GLOBAL STATUS LIKE 'wsrep%'\"",
            timeout=10,
        )
    except ProviderError:
        return {}  # the node itself is not running
    return parse_status(r.stdout) if r.ok else {}


def mariadbd_running(ctx: Context, node: str) -> bool:
    try:
        return ctx.provider.run(node, "pgrep -x mariadbd", timeout=10).ok
    except ProviderError:
        return False


def _log_tail(ctx: Context, node: str, lines: int = 15) -> str:
    try:
        return ctx.provider.run(node, f"tail -n {lines} {LOG}", timeout=10).stdout
    except ProviderError as exc:
        return str(exc)


def wait_member(ctx: Context, node: str, *, timeout: float, size: int | None = None) -> dict[str, str]:
    """Until `node` is Synced in a primary component (of `size` members if given, else of every galera node that
    answers). Fails fast, with the log's tail, if mariadbd exits."""
    started = time.monotonic()

    def ready() -> dict[str, str] | None:
        st = status(ctx, node)
        if not st and time.monotonic() - started > 5 and not mariadbd_running(ctx, node):
            raise GaleraError(f"{node}: mariadbd exited while starting; {LOG} ends:\n{_log_tail(ctx, node)}")
        if not is_member(st, size):
            return None
        if size is None:
            answering = [n for n in galera_nodes(ctx) if n == node or is_member(status(ctx, n))]
            if st.get("wsrep_cluster_size") != str(len(answering)):
                return None
        return st

    return until(
        ready,
        timeout=timeout,
        interval=0.25,
        what=f"{node} to be Synced in a primary component" + (f" of {size}" if size else ""),
        seen=lambda: f"{summary(status(ctx, node))}; log: {_log_tail(ctx, node, 5)}",
    )


def wait_all(ctx: Context, nodes: Sequence[str], *, timeout: float) -> dict[str, dict[str, str]]:
    """Until every node in `nodes` is Synced in one primary component of exactly len(nodes) members."""

    def ready() -> dict[str, dict[str, str]] | None:
        states = {n: status(ctx, n) for n in nodes}
        uuids = {st.get("wsrep_cluster_state_uuid") for st in states.values()}
        ok = all(is_member(st, len(nodes)) for st in states.values()) and len(uuids) == 1
        return states if ok else None

    return until(
        ready,
        timeout=timeout,
        interval=0.25,
        what=f"{', '.join(nodes)} to be Synced in one primary component of {len(nodes)}",
        seen=lambda: {n: summary(status(ctx, n)) for n in nodes},
    )
