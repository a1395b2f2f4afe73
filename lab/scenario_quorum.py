"""Quorum options of a scenario (votequorum(5), corosync-qdevice(8)): their parsers, and the rules that span them.

Each rule is one corosync 3.1.7 / corosync-qdevice 3.0.3 would enforce by refusing to start, or by quietly
turning a feature off (exec/votequorum.c `votequorum_readconfig`; qdevices/qdevice-net-instance.c). A scenario
that asks for a behaviour corosync would not deliver is refused here, naming the field and the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lab.scenario_fields import _bool, _fail, _int, _name, _section, _show

if TYPE_CHECKING:
    from lab.scenario_model import ClusterOptions, Node

QNETD_ROLE = "qnetd"  # the arbiter's role: a node outside the cluster running corosync-qnetd
QDEVICE_ALGORITHMS = ("ffsplit", "lms")
QDEVICE_TLS = ("on", "off", "required")
ATB_MODES = ("lowest", "highest")
# qdevice sends timeout * 0.8 (and sync_timeout * 0.8) as heartbeat intervals; it clamps the first to, and qnetd
# refuses a client asking for the second outside, [1000, 120000] ms: so both timeouts live in [1250, 150000].
QDEVICE_TIMEOUT_MS = (1250, 150_000)


@dataclass(frozen=True)
class QDevice:
    """`quorum { device { model: net; net { host; algorithm } } }`: a vote from corosync-qnetd on `host`."""

    host: str  # the scenario node running corosync-qnetd (role qnetd)
    algorithm: str = "ffsplit"  # corosync-qdevice's default
    model: str = "net"  # the only model corosync-qdevice has
    timeout_ms: int | None = None  # None: corosync-qdevice's default (10000)
    sync_timeout_ms: int | None = None  # None: its default (30000)
    tls: str | None = None  # None: its default (on: TLS if qnetd offers it)

    def votes(self, cluster_nodes: int) -> int:
        """ffsplit must give exactly 1 vote; lms the default, one less than the nodes' (corosync-qdevice(8))."""
        return 1 if self.algorithm == "ffsplit" else cluster_nodes - 1


def _atb(value: Any, where: str) -> str | tuple[str, ...] | None:
    if value is False:
        return None
    if value in ATB_MODES:
        return str(value)
    if isinstance(value, list) and value:
        names = tuple(_name(v, f"{where}.{i}") for i, v in enumerate(value))
        for i, n in enumerate(names):
            if names.index(n) != i:
                _fail(where, f"{n!r} is listed twice", "name each node once, in the order corosync should try them")
        return names
    fix = "write false, lowest, highest, or a list of cluster node names (corosync tries them in order)"
    if value is True:
        fix = "write lowest (what `auto_tie_breaker: 1` means to corosync), highest, or a list of node names"
    _fail(where, f"{_show(value)} is not a tie breaker", fix)


def _choice(value: Any, where: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        _fail(where, f"{_show(value)} is not one of {', '.join(allowed)}", f"use one of: {', '.join(allowed)}")
    return str(value)


def _tls(value: Any, where: str) -> str:
    if isinstance(value, bool):  # YAML 1.1 reads a bare on/off as true/false
        return "on" if value else "off"
    return _choice(value, where, QDEVICE_TLS)


def _qdevice(value: Any, where: str) -> QDevice | None:
    if value is None:
        return None
    raw = _section(value, where, ("host",), ("model", "algorithm", "timeout_ms", "sync_timeout_ms", "tls"))
    low, high = QDEVICE_TIMEOUT_MS
    timeouts = {k: _int(raw[k], f"{where}.{k}", low, high) for k in ("timeout_ms", "sync_timeout_ms") if k in raw}
    return QDevice(
        host=_name(raw["host"], f"{where}.host"),
        model=_choice(raw.get("model", "net"), f"{where}.model", ("net",)),
        algorithm=_choice(raw.get("algorithm", "ffsplit"), f"{where}.algorithm", QDEVICE_ALGORITHMS),
        tls=_tls(raw["tls"], f"{where}.tls") if "tls" in raw else None,
        **timeouts,
    )


QUORUM_FIELDS: dict[str, Callable[[Any, str], Any]] = {
    "expected_votes": _int,
    "wait_for_all": _bool,
    "last_man_standing": _bool,
    "last_man_standing_window_ms": _int,
    "auto_tie_breaker": _atb,
    "qdevice": _qdevice,
}


def wait_for_all(opts: ClusterOptions) -> bool:
    """What corosync runs with: wait_for_all as written, else on exactly when two_node is."""
    return opts.two_node if opts.wait_for_all is None else opts.wait_for_all


def voters(opts: ClusterOptions, cluster_nodes: int) -> int:
    """Every vote there is: one per cluster node (the nodelist) and the qdevice's."""
    return cluster_nodes + (opts.qdevice.votes(cluster_nodes) if opts.qdevice else 0)


def check_quorum(opts: ClusterOptions, where: str, nodes: Mapping[str, Node], given: Collection[str]) -> None:
    """The rules across quorum options, on the options a section (`cluster` or a profile) runs with; `given` are
    the keys that section writes itself (a rule about a key it only inherits was reported where it was written)."""
    cluster = [n for n, node in nodes.items() if node.has_role("pacemaker")]
    if not cluster:
        for key in (k for k in QUORUM_FIELDS if k in given):
            _fail(f"{where}.{key}", "no node has the pacemaker role, so no corosync reads it", f"delete `{key}:`")
        return
    atb, qdev, n = opts.auto_tie_breaker, opts.qdevice, len(cluster)
    if isinstance(atb, tuple):
        for name in atb:
            if name not in cluster:
                _fail(f"{where}.auto_tie_breaker", f"{name!r} is not a cluster node",
                      f"name nodes with the pacemaker role: {', '.join(cluster)}")  # fmt: skip
    if qdev is not None:
        _check_host(qdev, f"{where}.qdevice.host", nodes, cluster)
        for key, on in (("two_node", opts.two_node), ("last_man_standing", opts.last_man_standing),
                        ("auto_tie_breaker", atb is not None)):  # fmt: skip
            if on:  # corosync refuses each: "two_node and quorum device cannot be configured at the same time" ...
                _fail(f"{where}.qdevice", f"corosync refuses a quorum device together with {key}",
                      f"turn {key} off (the qdevice's vote does its job), or drop the qdevice")  # fmt: skip
    if atb is not None:
        if opts.two_node:  # corosync keeps the tie breaker and turns two_node off
            _fail(f"{where}.auto_tie_breaker", "corosync turns two_node off when auto_tie_breaker is on",
                  "use one of them: two_node for a fence race, auto_tie_breaker to decide by node id")  # fmt: skip
        if n % 2 and not wait_for_all(opts):
            lms = "and last_man_standing, corosync refuses to start" if opts.last_man_standing else (
                "corosync turns auto_tie_breaker off")  # fmt: skip
            _fail(f"{where}.auto_tie_breaker", f"with an odd number of cluster nodes ({n}) without wait_for_all {lms}",
                  "set wait_for_all: true (an isolated majority without the tie breaker must not be quorate "
                  "after a reboot)")  # fmt: skip
    if opts.expected_votes is not None:
        _check_expected(opts, opts.expected_votes, f"{where}.expected_votes", n)
    if "last_man_standing_window_ms" in given and not opts.last_man_standing:
        _fail(f"{where}.last_man_standing_window_ms", "last_man_standing is off, so corosync ignores the window",
              "set last_man_standing: true, or delete the window")  # fmt: skip


def _check_host(qdev: QDevice, where: str, nodes: Mapping[str, Node], cluster: list[str]) -> None:
    arbiters = [n for n, node in nodes.items() if node.has_role(QNETD_ROLE)]
    hint = f"name one of: {', '.join(arbiters)}" if arbiters else f"add a node with role {QNETD_ROLE} and name it"
    if qdev.host not in nodes:
        _fail(where, f"{qdev.host!r} is not a node of this scenario", hint)
    host = nodes[qdev.host]
    if host.has_role("pacemaker"):
        _fail(where, f"{qdev.host} is a cluster node: its vote would fall with it",
              f"run qnetd on a node outside the cluster ({hint})")  # fmt: skip
    if not host.has_role(QNETD_ROLE):
        _fail(where, f"{qdev.host} has no role {QNETD_ROLE}", f"add {QNETD_ROLE} to its roles, or {hint}")
    shared = set.intersection(*(set(nodes[c].addresses) for c in cluster))
    if not shared & set(host.addresses):
        _fail(where, f"{qdev.host} has no address on a network every cluster node is on ({', '.join(sorted(shared))})",
              "give it an address on the management network")  # fmt: skip


def _check_expected(opts: ClusterOptions, expected: int, where: str, cluster_nodes: int) -> None:
    votes = voters(opts, cluster_nodes)
    if opts.qdevice is not None and opts.qdevice.algorithm == "lms":
        # corosync wants quorum.device.votes with expected_votes; lms works only with the default votes
        _fail(where, "corosync needs the qdevice's votes written with expected_votes, and lms its default votes",
              "delete expected_votes: corosync counts the nodelist and the qdevice")  # fmt: skip
    what = f"{cluster_nodes} cluster nodes" + (f" + {votes - cluster_nodes} qdevice vote" if opts.qdevice else "")
    if expected < votes:
        # corosync raises expected_votes to the votes it sees, so the harm is until every vote has been seen
        q_e, q_v = expected // 2 + 1, votes // 2 + 1
        harm = [f"{q_e} votes are quorate where a majority is {q_v} (two partitions at once)"] if q_e < q_v else []
        harm += [f"wait_for_all ends once {expected} votes are seen"] if wait_for_all(opts) else []
        if opts.qdevice is not None and expected - opts.qdevice.votes(cluster_nodes) < 2:
            harm += ["corosync refuses it with this qdevice (expected_votes less the qdevice's votes is below 2)"]
        _fail(where, f"{expected} is below the {votes} votes there are ({what}): until all are seen, corosync takes "
              f"{expected} for the cluster's size" + "".join(f"; {h}" for h in harm),
              f"set expected_votes: {votes}, or delete it")  # fmt: skip
    if expected > votes and wait_for_all(opts):
        _fail(where, f"{expected} is above the {votes} votes there are ({what}): wait_for_all would wait forever",
              f"set expected_votes: {votes}, or delete it")  # fmt: skip
    if expected // 2 + 1 > votes:
        _fail(where, f"{expected} makes quorum {expected // 2 + 1}, more than the {votes} votes there are ({what})",
              f"set expected_votes: {votes}, or delete it")  # fmt: skip
