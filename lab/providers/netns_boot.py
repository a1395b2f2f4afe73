"""netns provider, one node's boot (at `up`, and again after a crash): its directories, its addresses, and its
PID 1 (tini in fresh mount/uts/pid/ipc namespaces, private /run, /dev/shm, /tmp, overlays on /var/lib and
/usr/lib/ocf, per-node /etc/{corosync,mysql,rabbitmq,haproxy,keepalived}, /etc/hosts and /var/log)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from lab.providers.common import sh, starttime
from lab.providers.netns_commands import NetnsCommands
from lab.providers.netns_node import NODE_PATH
from lab.wait import until

PRIVATE_TMPFS = ("/run", "/dev/shm", "/tmp")  # /tmp: mariadb temp names carry PIDs, which repeat across nodes
PRIVATE_ETC = ("corosync", "mysql", "rabbitmq", "haproxy", "keepalived")

# Runs as the node's first process: private mounts, then tini as PID 1 (it reaps orphans, so a
# SIGKILLed daemon does not linger as a zombie that `kill -0` still finds).
NODE_INIT = r"""
set -e
mount --make-rprivate /
for d in {tmpfs}; do mount -t tmpfs -o mode=0755,size=256m tmpfs "$d"; done
# /var/lib as an overlay: private to the node, yet /var/lib/mysql and /var/lib/rabbitmq stay plain
# directories. A mount point there would make ocf:heartbeat:Filesystem's probe report "running".
mkdir -p "$HALAB_NODE_DIR/varlib/upper" "$HALAB_NODE_DIR/varlib/work"
v="$HALAB_NODE_DIR/varlib"
mount -t overlay overlay -o "lowerdir=/var/lib,upperdir=$v/upper,workdir=$v/work" /var/lib
# /usr/lib/ocf as an overlay: Pacemaker 2.1 looks for agents there only (no OCF_RA_PATH), and the lab's own
# (ocf:halab:*, provision/ocf/) go in per node, never into the host's /usr
mkdir -p "$HALAB_NODE_DIR/ocf/upper" "$HALAB_NODE_DIR/ocf/work"
o="$HALAB_NODE_DIR/ocf"
mount -t overlay overlay -o "lowerdir=/usr/lib/ocf,upperdir=$o/upper,workdir=$o/work" /usr/lib/ocf
chmod 1777 /dev/shm /tmp
for e in {etc}; do mount --bind "$HALAB_NODE_DIR/etc/$e" "/etc/$e"; done
mount --bind "$HALAB_NODE_DIR/etc/hosts" /etc/hosts
mount --bind "$HALAB_NODE_DIR/log" /var/log
hostname "$HALAB_NODE"
mkdir -p /run/crm /run/mysqld /run/rabbitmq /run/lock /var/log/pacemaker /var/log/mysql \
  /var/log/rabbitmq /var/log/crmsh /var/log/corosync /var/log/halab /run/haproxy /run/keepalived \
  /var/lib/pacemaker/cib /var/lib/pacemaker/pengine /var/lib/pacemaker/blackbox /var/lib/pacemaker/cores
chown -R hacluster:haclient /var/lib/pacemaker /run/crm /var/log/pacemaker
chown mysql:mysql /run/mysqld /var/log/mysql /var/lib/mysql
chown rabbitmq:rabbitmq /run/rabbitmq /var/log/rabbitmq /var/lib/rabbitmq
touch /run/halab-ready
exec tini -s -- sleep infinity
"""


class NetnsBoot(NetnsCommands):
    def _configure_addresses(self, node: str) -> None:
        ns = self.netns(node)
        for net_name, addr in self.scenario.nodes[node].addresses.items():
            prefix = self.scenario.networks[net_name].cidr.prefixlen
            sh("ip", "-n", ns, "addr", "flush", "dev", net_name)
            sh("ip", "-n", ns, "addr", "add", f"{addr}/{prefix}", "dev", net_name)
            sh("ip", "-n", ns, "link", "set", net_name, "up")
            # a cable pulled before the crash is still pulled after the power comes back
            cut = [node, net_name] in self._state.get("cut", [])
            sh("ip", "-n", self.fabric, "link", "set", self.veth(node, net_name), "down" if cut else "up")

    def _prepare_node_dir(self, node: str) -> Path:
        d = self._node_dir(node)
        (d / "log").mkdir(parents=True, exist_ok=True)
        for e in PRIVATE_ETC:
            target = d / "etc" / e
            if not target.exists():
                # Start from the packaged config so the daemons find what they expect.
                if Path(f"/etc/{e}").is_dir():
                    shutil.copytree(f"/etc/{e}", target, symlinks=True)
                else:
                    target.mkdir(parents=True)
        hosts = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
        for other in self.scenario.nodes.values():
            first = next(iter(other.addresses.values()))
            hosts.append(f"{first} {other.name}")
        (d / "etc" / "hosts").write_text("\n".join(hosts) + "\n")
        return d

    def _start_init(self, node: str) -> None:
        d = self._prepare_node_dir(node)
        script = NODE_INIT.format(tmpfs=" ".join(PRIVATE_TMPFS), etc=" ".join(PRIVATE_ETC))
        env = {"PATH": NODE_PATH, "HALAB_NODE": node, "HALAB_NODE_DIR": str(d), "LANG": "C.UTF-8"}
        with open(d / "log" / "init.log", "ab") as log:
            p = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    self.netns(node),
                    "unshare",
                    "--mount",
                    "--uts",
                    "--pid",
                    "--ipc",
                    "--fork",
                    "--mount-proc",
                    "--propagation",
                    "private",
                    "sh",
                    "-c",
                    script,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                cwd="/",
                start_new_session=True,
            )
        # The node's PID 1 is unshare's child; find its host PID to nsenter and to kill it.
        init = until(
            lambda: self._child_of(p.pid),
            timeout=10,
            what=f"{node}'s init process",
            seen=lambda: f"unshare pid {p.pid} alive={p.poll() is None}",
        )
        self._state["init_pids"][node] = init
        self._state.setdefault("init_starts", {})[node] = starttime(init)
        self._save_state()

    @staticmethod
    def _child_of(pid: int) -> int | None:
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except FileNotFoundError:
            return None
        return int(children[0]) if children else None

    def _ready(self, node: str) -> bool:
        return self._init_alive(node) and self.run(node, "test -e /run/halab-ready", timeout=5).ok
