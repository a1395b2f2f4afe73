"""What lab/evidence.py asks each node at a stage, per topology and role, and the one shell script that asks it.

A node's commands go in ONE provider call (a `rabbitmqctl` alone starts an Erlang VM; a provider call is an
nsenter or an SSH round trip): each command's stdout, exit code and stderr come back between markers carrying a
nonce, the whole stream base64-encoded so the scrubber sees the exact bytes (a raw key byte decoded with
`errors="replace"` could no longer be found). A command that does not apply to a node's roles is not sent; one
whose service is not running there (`when` fails) is recorded as skipped, not run and failed."""

from __future__ import annotations

import base64
import re
import secrets
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

from provision import galera, haproxy, keepalived, pacemaker, qdevice, rabbitmq, rabbitmq_cluster

if TYPE_CHECKING:
    from lab.session import Lab

# Per command, inside the node; the provider call's own timeout is their sum plus this.
COMMAND_S = 10.0
# rabbitmqctl boots an Erlang VM: ~0.5 s here, ~21 s per call under TCG (README, libvirt)
RABBITMQCTL_S = 40.0
SLACK_S = 10.0
STAGES_EVERY = "every"  # at every stage
STAGES_EDGES = "edges"  # at the run's first stage and at "end" (configs, versions: they change only on a restart)
STAGES_END = "end"  # at "end" only: `rabbitmqctl cluster_status` boots an Erlang VM (~0.5 s here, ~21 s under TCG)


@dataclass(frozen=True)
class Command:
    name: str  # the file it lands in (<name>.txt)
    cmd: str
    roles: frozenset[str]  # sent to a node with any of these roles
    when: str | None = None  # a shell test; false: skipped, with `why`
    why: str = ""
    stages: str = STAGES_EVERY
    timeout_s: float = COMMAND_S  # 0: a local read (a file, /proc) that asks no daemon: no timeout(1) around it


def _cmd(
    name: str,
    cmd: str,
    roles: set[str],
    when: str | None = None,
    why: str = "",
    stages: str = STAGES_EVERY,
    *,
    local: bool = False,
) -> Command:
    return Command(name, cmd, frozenset(roles), when, why, stages, 0.0 if local else COMMAND_S)


def _file(name: str, path: str, roles: set[str], stages: str = STAGES_EDGES) -> Command:
    """A configuration file, scrubbed like every output (the authkey, cookie, fence key and the clustercheck and API
    credential files are never among them)."""
    q = shlex.quote(path)
    return _cmd(name, f"cat {q}", roles, f"[ -f {q} ]", f"no {path} on this node", stages, local=True)


SERVERS = {"pacemaker", "mysql", "rabbitmq", "galera", "haproxy", "keepalived", "memcached", "api"}
MARIADBD = "pgrep -x mariadbd >/dev/null"
BEAM = "pgrep -x beam.smp >/dev/null"
MYSQL = "mysql --protocol=socket -uroot -N -B --connect-timeout=2"


def _erl_call(nodename: str) -> str:
    """The cluster membership RabbitMQ's mnesia reports (what `rabbitmqctl cluster_status` lists as disc and running
    nodes and partitions), through erl_call: a C client, milliseconds where rabbitmqctl boots an Erlang VM. It reads
    the cookie from $HOME/.erlang.cookie, so the cookie is on no command line."""
    return f"HOME=/var/lib/rabbitmq erl_call -sname {nodename} -timeout 8 -a 'rabbit_mnesia status'"


def common(lab: Lab) -> list[Command]:
    pkgs = " ".join(shlex.quote(p) for p in lab.playbook.PACKAGES)
    return [
        _cmd("uname", "uname -a", SERVERS, stages=STAGES_EDGES, local=True),
        _cmd(
            "packages",
            f"dpkg-query -W -f='${{Package}} ${{Version}}\\n' {pkgs}",
            SERVERS,
            stages=STAGES_EDGES,
            local=True,
        ),
        _cmd("processes", "ps -eo pid,ppid,stat,etimes,rss,args --sort=pid --width 400", SERVERS, local=True),
        _cmd("addresses", "ip -o addr show", SERVERS, local=True),
    ]


def pacemaker_cluster(lab: Lab) -> list[Command]:
    """What every Pacemaker topology's nodes say of their cluster (crm_report's core)."""
    pcmk = {"pacemaker"}
    return [
        _file("corosync.conf", "/etc/corosync/corosync.conf", pcmk, STAGES_EVERY),
        _cmd("corosync-quorumtool", "corosync-quorumtool -s", pcmk, "pgrep -x corosync >/dev/null", "corosync down"),
        _cmd("corosync-cfgtool", "corosync-cfgtool -s", pcmk, "pgrep -x corosync >/dev/null", "corosync down"),
        _cmd("cibadmin", "cibadmin -Q", pcmk, "pgrep -x pacemakerd >/dev/null", "pacemaker down"),
        _cmd("crm_mon", "crm_mon -1 -r -o", pcmk, "pgrep -x pacemakerd >/dev/null", "pacemaker down"),
        _file("crm-config", pacemaker.CRM_FILE, pcmk),
    ]


def quorum(lab: Lab) -> list[Command]:
    """The cluster's, and a qdevice's both ends: each node's device and the arbiter's votes (qnetd's ACK/NACK)."""
    device = [
        _cmd("qdevice", qdevice.QDEVICE_STATUS, {"pacemaker"}, "pgrep -f corosync-qdevice >/dev/null", "qdevice down"),
        _cmd("qnetd", qdevice.QNETD_STATUS, {"qnetd"}, "pgrep -x corosync-qnetd >/dev/null", "qnetd down"),
    ]
    return pacemaker_cluster(lab) + (device if lab.scenario.options(lab.profile).qdevice else [])


def active_passive(lab: Lab) -> list[Command]:
    pcmk = {"pacemaker"}
    # the shared disks as each node mounts them (a double mount shows here), and DRBD's own view where it runs
    storage = [_cmd("mounts", "awk '$1 ~ \"^/dev/(loop|drbd)\"' /proc/self/mounts", pcmk, local=True)]
    storage += [_cmd("drbd", "drbdadm status", pcmk)] if lab.ctx.drbd else []
    return [
        *pacemaker_cluster(lab),
        *storage,
        _cmd(
            "mysql",
            f'pgrep -a -x mariadbd; {MYSQL} -e "SHOW GLOBAL STATUS WHERE Variable_name IN '
            "('Uptime','Threads_connected','Questions','Com_insert') OR Variable_name LIKE 'wsrep\\_%'\"",
            {"mysql"},
            MARIADBD,
            "mariadbd not running on this node",
        ),
        _cmd("rabbitmq-membership", _erl_call("rabbit@localhost"), {"rabbitmq"}, BEAM, "RabbitMQ not running here"),
        Command(
            "rabbitmqctl-cluster_status",
            f"rabbitmqctl {rabbitmq.NODE} -q cluster_status",
            frozenset({"rabbitmq"}),
            BEAM,
            "RabbitMQ not running on this node",
            STAGES_END,
            RABBITMQCTL_S,
        ),
        _file("mariadb-halab.cnf", "/etc/mysql/mariadb.conf.d/90-halab.cnf", {"mysql"}),
        _file("rabbitmq-env.conf", "/etc/rabbitmq/rabbitmq-env.conf", {"rabbitmq"}),
        *(_file(f"drbd-{s}.res", f"/etc/drbd.d/{s}.res", pcmk) for s in lab.scenario.services if lab.ctx.drbd),
    ]


def active_active(lab: Lab) -> list[Command]:
    def per_node(node: str) -> list[Command]:
        name = rabbitmq_cluster.nodename(node)
        return [
            Command(
                "rabbitmq-membership", _erl_call(name), frozenset({f"node:{node}"}), BEAM, "RabbitMQ not running here"
            ),
            Command(
                "rabbitmqctl-cluster_status",
                f"rabbitmqctl -n {name} -q cluster_status",
                frozenset({f"node:{node}"}),
                BEAM,
                "RabbitMQ not running on this node",
                STAGES_END,
                RABBITMQCTL_S,
            ),
        ]

    show_stat = f"/usr/bin/python3 -c {shlex.quote(haproxy._SHOW_STAT)} {haproxy.ADMIN_SOCKET}"
    log = shlex.quote(keepalived.LOG)
    return [
        _cmd(
            "galera-wsrep",
            f"{MYSQL} -e \"SHOW GLOBAL STATUS LIKE 'wsrep\\_%'\"",
            {"galera"},
            MARIADBD,
            "mariadbd not running on this node",
        ),
        _file("grastate.dat", galera.GRASTATE, {"galera"}, STAGES_EVERY),
        *(c for n in lab.scenario.nodes_with_role("rabbitmq") for c in per_node(n.name)),
        _cmd(
            "haproxy-show-stat",
            show_stat,
            {"haproxy"},
            f"[ -S {haproxy.ADMIN_SOCKET} ]",
            "no HAProxy stats socket (haproxy not running)",
        ),
        _cmd(
            "keepalived-state",
            f"pgrep -a -x keepalived; grep -E 'Entering (MASTER|BACKUP|FAULT) STATE|received lower priority' {log} "
            "| tail -n 8",
            {"keepalived"},
            f"[ -f {log} ]",
            "keepalived never started here",
            local=True,
        ),
        _file("galera.cnf", galera.CNF, {"galera"}),
        _file("haproxy.cfg", haproxy.CONFIG, {"haproxy"}),
        _file("keepalived.conf", keepalived.CONFIG, {"keepalived"}),
        _file("rabbitmq-env.conf", "/etc/rabbitmq/rabbitmq-env.conf", {"rabbitmq"}),
    ]


# api-cluster: ch. 3's commands, by role (its API nodes are pacemaker nodes too)
TOPOLOGIES = {"active-passive": active_passive, "active-active": active_active, "quorum": quorum,
              "api-cluster": active_passive}  # fmt: skip


def for_node(lab: Lab, node: str, *, first: bool, end: bool) -> list[Command]:
    """The commands of the lab's topology that apply to `node`'s roles at this stage (the run's first, "end", or
    one between)."""
    mine = set(lab.scenario.nodes[node].roles) | {f"node:{node}"}
    wanted = {STAGES_EVERY} | ({STAGES_EDGES} if first or end else set()) | ({STAGES_END} if end else set())
    every = common(lab) + TOPOLOGIES[lab.scenario.topology](lab)
    return [c for c in every if c.roles & mine and c.stages in wanted]


@dataclass(frozen=True)
class Output:
    name: str
    cmd: str
    rc: int | None  # None: skipped (`skipped` says why) or never reported (the call timed out)
    stdout: bytes
    stderr: bytes
    skipped: str | None = None


def script(commands: list[Command]) -> tuple[str, str]:
    """(shell script, nonce). Each distinct `when` is tested once (a pgrep walks /proc); then every command runs at
    once in the background (they wait on their daemons' IPC, not on CPU: a stage costs its slowest command, not
    their sum), each into its own files; then all are emitted in order between markers, base64-encoded."""
    nonce = secrets.token_hex(8)
    conds = list(dict.fromkeys(c.when for c in commands if c.when))
    parts = ["D=$(mktemp -d) || exit 97; trap 'rm -rf \"$D\"' EXIT"]
    parts += [f"if {w} 2>/dev/null; then W{i}=1; else W{i}=; fi" for i, w in enumerate(conds)]
    for i, c in enumerate(commands):
        # a local read needs no timeout(1): one exec fewer
        run = f"timeout -k 2 {int(c.timeout_s)} sh -c {shlex.quote(c.cmd)}" if c.timeout_s else f"( {c.cmd} )"
        run = f'{{ {run}; }} >"$D/{i}.out" 2>"$D/{i}.err" </dev/null; echo $? >"$D/{i}.rc"'
        if c.when:
            run = f'if [ -n "$W{conds.index(c.when)}" ]; then {run}; else echo skip >"$D/{i}.rc"; fi'
        parts.append(f"( {run} ) &")
    parts.append("wait")
    parts.append(
        f"for i in {' '.join(str(i) for i in range(len(commands)))}; do "
        f'printf "\\n%s %s out\\n" "$M" "$i"; cat "$D/$i.out" 2>/dev/null; '
        f'printf "\\n%s %s rc %s\\n" "$M" "$i" "$(cat "$D/$i.rc" 2>/dev/null || echo none)"; '
        f'cat "$D/$i.err" 2>/dev/null; printf "\\n%s %s end\\n" "$M" "$i"; '
        "done | base64 -w0"
    )
    return f"M=@@halab-evidence-{nonce}\n" + "\n".join(parts), nonce


def timeout_of(commands: list[Command]) -> float:
    """The provider call's bound: the slowest command's own (they run together), its kill grace, and slack."""
    return max((c.timeout_s or COMMAND_S) for c in commands) + 2 + SLACK_S


def split(commands: list[Command], encoded: str, nonce: str) -> list[Output]:
    """Each command's outputs from the script's stream; a command the stream does not reach (timeout) has rc None."""
    raw = base64.b64decode(encoded.strip()[: len(encoded.strip()) // 4 * 4] or b"")
    m = re.escape(f"@@halab-evidence-{nonce}".encode())
    pat = re.compile(rb"\n" + m + rb" (\d+) out\n(.*?)\n" + m + rb" \1 rc (\S+)\n(.*?)\n" + m + rb" \1 end\n", re.S)
    seen: dict[int, Output] = {}
    for hit in pat.finditer(raw):
        i = int(hit.group(1))
        if i >= len(commands):
            continue
        c, rc = commands[i], hit.group(3).decode()
        if rc == "skip":
            seen[i] = Output(c.name, c.cmd, None, b"", b"", skipped=c.why or f"`{c.when}` is false")
        else:
            seen[i] = Output(c.name, c.cmd, int(rc) if rc.lstrip("-").isdigit() else None, hit.group(2), hit.group(4))
    return [
        seen.get(i, Output(c.name, c.cmd, None, b"", b"no output: the node's call ended before it ran"))
        for i, c in enumerate(commands)
    ]
