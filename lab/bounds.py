"""Bounds and floors for failover times, derived from the configuration actually loaded.

Bounds are what the configured timeouts allow (a test fails beyond them), in milliseconds; floors, what a failover
cannot undercut, are lab/floors.py's."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from lab.scenario import ClusterOptions

# Pacemaker's default operation timeout when an op has none configured.
DEFAULT_OP_TIMEOUT_MS = 20_000


def duration_ms(text: str | None, default: int = DEFAULT_OP_TIMEOUT_MS) -> int:
    """Pacemaker durations: '20s', '2min', '500ms', '1h', or bare seconds."""
    if not text:
        return default
    m = re.fullmatch(r"\s*(\d+)\s*(ms|msec|s|sec|m|min|h|hr)?\s*", text)
    if not m:
        raise ValueError(f"not a Pacemaker duration: {text!r}")
    n, unit = int(m[1]), m[2] or "s"
    return (
        n
        * {"ms": 1, "msec": 1, "s": 1000, "sec": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000, "hr": 3_600_000}[
            unit
        ]
    )


def group_members(cib_resources_xml: str, group: str) -> list[str]:
    root = ET.fromstring(cib_resources_xml)
    g = next((g for g in root.iter("group") if g.get("id") == group), None)
    if g is None:
        raise KeyError(f"group {group} not in the CIB")
    return [p.get("id", "?") for p in g.findall("primitive")]


def op_ms(cib_resources_xml: str, primitive: str, name: str, field: str = "timeout") -> int:
    """An op's timeout (or interval) as configured, Pacemaker's default timeout if absent."""
    root = ET.fromstring(cib_resources_xml)
    p = next((p for p in root.iter("primitive") if p.get("id") == primitive), None)
    if p is None:
        raise KeyError(f"primitive {primitive} not in the CIB")
    for op in p.iter("op"):
        if op.get("name") == name:
            return duration_ms(op.get(field), DEFAULT_OP_TIMEOUT_MS if field == "timeout" else 0)
    if field == "interval":
        raise KeyError(f"{primitive} has no {name} op, so no interval")
    return DEFAULT_OP_TIMEOUT_MS


# corosync.conf(5) token_coefficient's default: the lab never writes one
TOKEN_COEFFICIENT_MS = 650


def token_timeout_ms(opts: ClusterOptions) -> int:
    """The token timeout corosync runs with: `token`, plus token_coefficient for each node past two in the
    nodelist (corosync.conf(5); 1000 ms on the guide's seven nodes is 4250 ms)."""
    return opts.token_ms + max(0, opts.nodelist_size - 2) * TOKEN_COEFFICIENT_MS


def membership_ms(opts: ClusterOptions) -> int:
    """Corosync declares a silent peer lost after the token timeout, then needs consensus to form
    the new membership (the lab writes consensus itself: it does not grow with the nodes)."""
    return token_timeout_ms(opts) + opts.consensus_ms


# corosync.conf(5) `hold`, which the lab leaves at its default: how long a node may keep the token when the ring is
# idle before it passes it on
TOKEN_HOLD_MS = 180


def membership_floor_ms(opts: ClusterOptions) -> int:
    """The least a survivor can take to form the new membership after a peer went silent: its token timer runs from
    the token's last arrival, which may precede the crash by the two holds of a two-step rotation (its own, then
    the victim's, each up to `hold` on an idle ring). Measured: a crash failover 20 ms under token + consensus."""
    return membership_ms(opts) - 2 * TOKEN_HOLD_MS


def failover_bound_ms(opts: ClusterOptions, cib_resources_xml: str, group: str, *, stop_first: bool = False) -> int:
    """Membership change + every member's start timeout (+ stop timeouts for an orderly move)."""
    members = group_members(cib_resources_xml, group)
    total = membership_ms(opts) + sum(op_ms(cib_resources_xml, m, "start") for m in members)
    if stop_first:
        total += sum(op_ms(cib_resources_xml, m, "stop") for m in members)
    return total


def monitor_recovery_bound_ms(cib_resources_xml: str, primitive: str) -> int:
    """A dead process is noticed by the next monitor (interval + its timeout), then stopped and
    started again in place."""
    return sum(
        (
            op_ms(cib_resources_xml, primitive, "monitor", "interval"),
            op_ms(cib_resources_xml, primitive, "monitor"),
            op_ms(cib_resources_xml, primitive, "stop"),
            op_ms(cib_resources_xml, primitive, "start"),
        )
    )


def latest_exec_ms(
    cib_resources_xml: str, crm_mon_ops_xml: str, node: str, primitive: str, task: str
) -> tuple[int, str]:
    """How long `primitive`'s latest `task` took (crm_mon's exec-time: on `node`, else on another node), or its
    configured timeout where none ran. (ms, where it came from)"""
    others = [n.get("name", "") for n in ET.fromstring(crm_mon_ops_xml).iter("node") if n.get("name") != node]
    for n in (node, *others):
        ms = op_exec_ms(crm_mon_ops_xml, n, primitive, task)
        if ms is not None:
            return ms, f"measured on {n}"
    return op_ms(cib_resources_xml, primitive, task), "its timeout: none on record"


def monitor_restart_limit_ms(
    cib_resources_xml: str, crm_mon_ops_xml: str, node: str, primitive: str
) -> tuple[int, str]:
    """The most a dead `primitive` should cost when Pacemaker has to recover it in place: its next monitor
    (interval + timeout), then a stop and a start as long as its latest ones took (latest_exec_ms). A process
    restarted by a supervisor of its own (mysqld_safe) comes back sooner. (ms, how it was counted)"""
    interval = op_ms(cib_resources_xml, primitive, "monitor", "interval")
    timeout = op_ms(cib_resources_xml, primitive, "monitor")
    took = {t: latest_exec_ms(cib_resources_xml, crm_mon_ops_xml, node, primitive, t) for t in ("stop", "start")}
    how = ", ".join(f"{task} {ms} ms ({src})" for task, (ms, src) in took.items())
    total = interval + timeout + sum(ms for ms, _ in took.values())
    return total, f"{primitive}'s monitor interval {interval} + timeout {timeout} ms, then {how}"


def op_exec_ms(crm_mon_ops_xml: str, node: str, resource: str, task: str) -> int | None:
    """exec-time of the latest `task` op of `resource` on `node`, from `crm_mon -1 -o --output-as=xml`."""
    root = ET.fromstring(crm_mon_ops_xml)
    for n in root.iter("node"):
        if n.get("name") != node or n.find("resource_history") is None:
            continue
        for rh in n.iter("resource_history"):
            if rh.get("id") != resource:
                continue
            ops = [o for o in rh.iter("operation_history") if o.get("task") == task]
            if ops:
                latest = max(ops, key=lambda o: int(o.get("call", "0")))
                return duration_ms(latest.get("exec-time"), 0)
    return None
