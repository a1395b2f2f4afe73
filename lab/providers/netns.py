"""netns provider: each node is a namespace set (net+mount+uts+pid+ipc) on one kernel.

Layout, all named after the lab so two labs coexist:
  halab-<lab>-fabric   network namespace holding one bridge per scenario network
                       (and the network's gateway address); nothing in the root namespace
  halab-<lab>-<node>   network namespace of a node; a veth pair joins it to the fabric bridge.
                       Its PID 1 is tini in fresh mount/uts/pid/ipc namespaces with private
                       /run, /dev/shm, /var/lib (overlay) and
                       per-node /etc/{corosync,mysql,rabbitmq}, /etc/hosts and /var/log.
Nodes are driven with nsenter. A state file under the state dir lets `halab down` clean up
after a harness that was killed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from lab.providers.base import ProviderError, Result, Unsupported
from lab.providers.common import (
    bridge_filter,
    daemon_command,
    kill_command,
    put_command,
    sh,
    signal_pid,
    starttime,
    stop_service_via,
)
from lab.scenario import Scenario
from lab.wait import until

# Processes of a SIGKILLed namespace are gone within milliseconds; seconds only on a badly overloaded machine.
DOWN_S = 10
NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PRIVATE_TMPFS = ("/run", "/dev/shm", "/tmp")  # /tmp: mariadb temp names carry PIDs, which repeat across nodes
PRIVATE_ETC = ("corosync", "mysql", "rabbitmq", "haproxy", "keepalived")
# Debian package for each binary the provider itself calls.
REQUIRED = {
    "ip": "iproute2",
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "losetup": "mount",
    "tini": "tini",
    "nft": "nftables",
    "mkfs.xfs": "xfsprogs",
    "setsid": "util-linux",
}

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


def default_state_root() -> Path:
    # Not under /tmp (private mounts hide it) nor under /var/lib (each node overlays /var/lib).
    return Path(os.environ.get("HALAB_STATE_DIR", "/var/tmp/halab"))


class NetnsProvider:
    name = "netns"
    observe_period_s = 0.1  # a look is `ip -n` and a /proc read: milliseconds

    def __init__(self, scenario: Scenario, lab: str | None = None, state_root: Path | None = None) -> None:
        self.scenario = scenario
        self.lab = lab or scenario.name
        self.prefix = f"halab-{self.lab}"
        self.state_dir = (state_root or default_state_root()) / self.lab
        self.state_file = self.state_dir / "state.json"
        self._state: dict = self._load_state()

    # ---------------------------------------------------------------- names and state
    @property
    def fabric(self) -> str:
        return f"{self.prefix}-fabric"

    def netns(self, node: str) -> str:
        return f"{self.prefix}-{node}"

    def veth(self, node: str, network: str) -> str:
        """Fabric-side veth name (IFNAMSIZ is 16): readable when it fits, hashed when not."""
        name = f"{node}-{network}"
        if len(name) <= 15:
            return name
        return "v" + hashlib.sha1(name.encode()).hexdigest()[:14]

    def _fresh_state(self) -> dict:
        return {
            "provider": self.name,
            "lab": self.lab,
            "namespaces": [],
            "loops": {},
            "init_pids": {},
            "cut": [],
            "filters": [],
        }

    def _load_state(self) -> dict:
        if self.state_file.exists():
            return json.loads(self.state_file.read_text())
        return self._fresh_state()

    def _save_state(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._state, indent=2))
        tmp.replace(self.state_file)

    # ---------------------------------------------------------------- lifecycle
    def preflight(self) -> None:
        if os.geteuid() != 0:
            raise ProviderError(
                "the netns provider needs root (namespaces, bridges, loop devices): "
                "run as root, e.g. `sudo -E tox -e lab-active-passive`"
            )
        missing = sorted({pkg for b, pkg in REQUIRED.items() if shutil.which(b) is None})
        if missing:
            raise ProviderError(
                f"missing Debian packages {', '.join(missing)}: run "
                f"`bash .ci/install-debian-packages` (or apt-get install {' '.join(missing)})"
            )

    def is_up(self) -> bool:
        """The lab exists (its nodes may be crashed)."""
        return self.fabric in self._existing_namespaces()

    def up(self) -> None:
        self.preflight()
        if self._state["namespaces"] or self._existing_namespaces():
            self.down()  # a previous run of this lab left something: start clean
        self._state = self._load_state()
        shutil.rmtree(self.state_dir / "nodes", ignore_errors=True)  # last run's logs and configs
        try:
            self._make_fabric()
            for node in self.scenario.nodes.values():
                self._make_node_network(node.name)
            for node in self.scenario.nodes:
                self._start_init(node)
            for node in self.scenario.nodes:
                until(
                    lambda n=node: self._ready(n),
                    timeout=10,
                    what=f"{node}'s namespaces to be ready",
                    seen=lambda n=node: f"init pid {self._state['init_pids'].get(n)}",
                )
        except BaseException:
            with contextlib.suppress(ProviderError):  # the original error is the one to show
                self.down()  # leave nothing half-built
            raise

    def _existing_namespaces(self) -> list[str]:
        """This lab's namespaces that exist, by exact name: a lab named `<lab>-2` shares the prefix."""
        mine = {self.fabric} | {self.netns(n) for n in self.scenario.nodes} | set(self._state.get("namespaces", []))
        out = sh("ip", "netns", "list", check=False).stdout
        return [ln.split()[0] for ln in out.splitlines() if ln.split() and ln.split()[0] in mine]

    def _add_netns(self, name: str) -> None:
        self._state["namespaces"].append(name)
        self._save_state()  # record before creating, so a kill between the two still cleans up
        sh("ip", "netns", "add", name)
        sh("ip", "-n", name, "link", "set", "lo", "up")

    def _make_fabric(self) -> None:
        self._add_netns(self.fabric)
        for net in self.scenario.networks.values():
            br = f"br-{net.name}"[:15]
            sh("ip", "-n", self.fabric, "link", "add", br, "type", "bridge")
            # Forward at once: a lab bridge has no loops, and STP's 30 s delay would cost every test.
            sh("ip", "-n", self.fabric, "link", "set", br, "type", "bridge", "forward_delay", "0", "stp_state", "0")
            if net.gateway is not None:
                sh("ip", "-n", self.fabric, "addr", "add", f"{net.gateway}/{net.cidr.prefixlen}", "dev", br)
            sh("ip", "-n", self.fabric, "link", "set", br, "up")

    def _make_node_network(self, node: str) -> None:
        ns = self.netns(node)
        self._add_netns(ns)
        for net_name in self.scenario.nodes[node].addresses:
            v = self.veth(node, net_name)
            sh("ip", "link", "add", v, "netns", self.fabric, "type", "veth", "peer", "name", net_name, "netns", ns)
            sh("ip", "-n", self.fabric, "link", "set", v, "master", f"br-{net_name}"[:15], "up")
        self._configure_addresses(node)

    def _configure_addresses(self, node: str) -> None:
        ns = self.netns(node)
        for net_name, addr in self.scenario.nodes[node].addresses.items():
            prefix = self.scenario.networks[net_name].cidr.prefixlen
            sh("ip", "-n", ns, "addr", "flush", "dev", net_name)
            sh("ip", "-n", ns, "addr", "add", f"{addr}/{prefix}", "dev", net_name)
            sh("ip", "-n", ns, "link", "set", net_name, "up")
            sh("ip", "-n", self.fabric, "link", "set", self.veth(node, net_name), "up")

    def _node_dir(self, node: str) -> Path:
        return self.state_dir / "nodes" / node

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

    def is_running(self, node: str) -> bool:
        return self._init_alive(node)

    def _init_pid(self, node: str) -> int | None:
        """The node's PID 1 as a host PID, only if it is still the process we started (PIDs are reused: a stale
        one would point nsenter and kill at some host process)."""
        pid = self._state["init_pids"].get(node)
        if pid and starttime(pid) is not None and starttime(pid) == self._state.get("init_starts", {}).get(node):
            return int(pid)
        return None

    def _init_alive(self, node: str) -> bool:
        return self._init_pid(node) is not None

    def _ready(self, node: str) -> bool:
        return self._init_alive(node) and self.run(node, "test -e /run/halab-ready", timeout=5).ok

    def down(self) -> None:
        """Remove everything of this lab; safe to call twice and after a killed harness. Every step runs even when
        one fails; what could not be removed is named in one error at the end."""
        namespaces = set(self._state.get("namespaces", [])) | set(self._existing_namespaces())
        problems: list[str] = []
        for ns in namespaces:  # every process of a node, tini included, is in its network namespace
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                _kill(int(pid))
        for ns in namespaces:
            try:
                until(
                    lambda n=ns: not sh("ip", "netns", "pids", n, check=False).stdout.split(),
                    timeout=DOWN_S,
                    what=f"every process in {ns} to exit",
                    seen=lambda n=ns: sh("ip", "netns", "pids", n, check=False).stdout,
                )
            except AssertionError as exc:
                problems.append(str(exc))
            sh("ip", "netns", "del", ns, check=False)
        images = list((self.state_dir / "disks").glob("*.img"))
        for dev in self._state.get("loops", {}).values():
            sh("losetup", "-d", dev, check=False)

        def attached() -> list[str]:
            return [ln for img in images for ln in sh("losetup", "-j", str(img), check=False).stdout.splitlines()]

        def detached() -> bool:
            # The kernel drops a dead node's mounts (and so its hold on the loop device) after its last process
            # is gone, asynchronously: seconds on a loaded machine. `losetup -d` of a busy loop only marks it
            # autoclear, so ask again until it is gone.
            for line in attached():
                sh("losetup", "-d", line.split(":")[0], check=False)
            return not attached()

        try:
            until(detached, timeout=DOWN_S, what="the lab's loop devices to detach", seen=attached)
        except AssertionError as exc:
            problems.append(str(exc))
        left_ns = self._existing_namespaces()
        left_loops = attached()
        if left_ns or left_loops:
            # keep the state (and the images) so a later `halab down` can try again
            raise ProviderError(
                f"{self.lab}: could not remove namespaces {left_ns} / loop devices {left_loops}; "
                f"{'; '.join(problems)}. Run `halab down {self.scenario.name}` again, or remove "
                "them by hand (ip netns pids/del, losetup -d)"
            )
        self._state = self._fresh_state()
        if self.state_dir.exists():
            shutil.rmtree(self.state_dir / "disks", ignore_errors=True)
            self._save_state()

    # ---------------------------------------------------------------- commands
    def _enter(self, node: str) -> list[str]:
        pid = self._init_pid(node)
        if not pid:
            raise ProviderError(f"node {node} is not running (crashed or lab not up): `halab up` or restart it")
        return ["nsenter", "-t", str(pid), "-n", "-m", "-u", "-i", "-p", "-r", "-w"]

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
        with open(log, "ab") as fh:
            return subprocess.Popen(
                ["ip", "netns", "exec", self.netns(node), *argv],
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=fh,
                start_new_session=True,
            )

    # ---------------------------------------------------------------- storage and observation
    def shared_disk(self, service: str, size_mb: int) -> str:
        """A loop-backed XFS image every node can mount: the stand-in for DRBD on one kernel."""
        if service in self._state["loops"]:
            return self._state["loops"][service]
        img = self.state_dir / "disks" / f"{service}.img"
        img.parent.mkdir(parents=True, exist_ok=True)
        with open(img, "wb") as fh:
            fh.truncate(size_mb * 1024 * 1024)
        sh("mkfs.xfs", "-q", "-f", str(img), timeout=60)
        dev = sh("losetup", "-f", "--show", str(img)).stdout.strip()
        self._state["loops"][service] = dev
        self._save_state()
        return dev

    def shared_disks(self) -> dict[str, str]:
        return dict(self._state["loops"])

    def mounts(self, node: str) -> list[tuple[str, str]]:
        pid = self._init_pid(node)
        try:
            text = Path(f"/proc/{pid}/mounts").read_text()
        except (OSError, TypeError):  # gone, or dying (EINVAL while its mount namespace is torn down)
            return []  # a crashed node mounts nothing
        return [(f[0], f[1]) for f in (ln.split() for ln in text.splitlines())]

    def addresses(self, node: str) -> list[str]:
        # Read through the network namespace: works while the node is frozen, and after a crash
        # shows what the kernel would still answer on.
        out = sh("ip", "-n", self.netns(node), "-o", "-4", "addr", "show", check=False).stdout
        return [ln.split()[3].split("/")[0] for ln in out.splitlines() if len(ln.split()) > 3]

    def observe(self, node: str) -> tuple[list[str], list[tuple[str, str]]]:
        return self.addresses(node), self.mounts(node)

    def pids(self, node: str) -> list[int]:
        pid = self._init_pid(node)
        try:
            target = os.readlink(f"/proc/{pid}/ns/pid")
        except (FileNotFoundError, TypeError):
            return []
        found = []
        for p in Path("/proc").iterdir():
            if p.name.isdigit():
                try:
                    if os.readlink(p / "ns/pid") == target:
                        found.append(int(p.name))
                except (FileNotFoundError, PermissionError, ProcessLookupError):
                    continue
        return found

    def memory_kib(self, node: str) -> dict[str, int]:
        """RSS and PSS summed over the node's processes (smaps_rollup)."""
        total = {"rss": 0, "pss": 0}
        for pid in self.pids(node):
            try:
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    key = line.split(":")[0].lower()
                    if key in total:
                        total[key] += int(line.split()[1])
            except (FileNotFoundError, ProcessLookupError):
                continue
        return total

    # ---------------------------------------------------------------- faults
    def crash(self, node: str) -> None:
        """Every process dies at once and the links go dark, as when power is cut."""
        self._links(node, "down")  # first: the network namespace would keep answering on its VIPs
        pid = self._init_pid(node)
        if pid:
            _kill(pid)  # SIGKILL of a PID namespace's init kills every process in it
            until(
                lambda: starttime(pid) is None,
                timeout=DOWN_S,
                what=f"{node}'s init {pid} to die",
                seen=lambda: Path(f"/proc/{pid}/status").read_text()[:200] if Path(f"/proc/{pid}").exists() else "",
            )
        self._state["init_pids"].pop(node, None)  # never signal or enter that PID again
        self._save_state()

    def restart(self, node: str) -> None:
        """Boot a crashed node again: fresh namespaces, its own addresses only (no stale VIP)."""
        if self._init_alive(node):
            raise ProviderError(f"{node} is still running: crash it before restarting")
        self._configure_addresses(node)
        self._start_init(node)
        until(
            lambda: self._ready(node),
            timeout=10,
            what=f"{node}'s namespaces to be ready after restart",
            seen=lambda: f"init pid {self._state['init_pids'].get(node)}",
        )

    def _links(self, node: str, state: str) -> None:
        for net_name in self.scenario.nodes[node].addresses:
            sh("ip", "-n", self.fabric, "link", "set", self.veth(node, net_name), state)

    def freeze(self, node: str) -> None:
        """SIGSTOP every process of the node (repeated until no new process appears)."""
        stopped: set[int] = set()
        for _ in range(20):
            new = [p for p in self.pids(node) if p not in stopped]
            if not new:
                return
            for p in new:
                signal_pid(p, signal.SIGSTOP)
                stopped.add(p)
        raise ProviderError(f"{node}: processes kept appearing while freezing it")

    def thaw(self, node: str) -> None:
        for p in self.pids(node):
            signal_pid(p, signal.SIGCONT)

    def kill_service(self, node: str, process: str) -> None:
        r = self.run(node, kill_command(process), timeout=10)
        if r.rc != 0:
            raise ProviderError(f"{node}: no process named {process} to kill (pkill rc {r.rc})")

    def stop_service(self, node: str, process: str, timeout: float = 30.0) -> None:
        stop_service_via(self, node, process, timeout)

    def cut(self, node: str, network: str) -> None:
        if network not in self.scenario.nodes[node].addresses:
            raise ProviderError(f"{node} has no NIC on network {network}")
        sh("ip", "-n", self.fabric, "link", "set", self.veth(node, network), "down")
        self._state["cut"].append([node, network])
        self._save_state()

    def restore(self, node: str, network: str) -> None:
        sh("ip", "-n", self.fabric, "link", "set", self.veth(node, network), "up")
        self._state["cut"] = [c for c in self._state["cut"] if c != [node, network]]
        self._save_state()

    def reset(self, node: str) -> None:
        """A hardware reset: the node dies and boots again at once, with none of its services running."""
        self.crash(node)
        self.restart(node)

    def poweroff(self, node: str) -> None:
        raise Unsupported(
            f"poweroff {node}: a netns node has no init system to shut down in order; use crash (power cut) "
            "or stop_service, or run it with --provider libvirt"
        )

    def port(self, node: str, network: str) -> str:
        """The node's port on the network's bridge (where partitions and packet loss filter)."""
        if network not in self.scenario.nodes[node].addresses:
            raise ProviderError(f"{node} has no NIC on network {network}")
        return self.veth(node, network)

    def filter_add(self, name: str, rules: Sequence[str]) -> None:
        """One nftables table (bridge family, forward hook) in the fabric, holding one fault's rules."""
        script = bridge_filter(f"halab_{name}", rules)
        sh("ip", "netns", "exec", self.fabric, "nft", "delete", "table", "bridge", f"halab_{name}", check=False)
        p = subprocess.run(
            ["ip", "netns", "exec", self.fabric, "nft", "-f", "-"], input=script, text=True, capture_output=True
        )
        if p.returncode:
            raise ProviderError(f"nft rejected the rules: {p.stderr.strip()}\n{script}")
        self._state["filters"] = sorted({*self._state.get("filters", []), name})
        self._save_state()

    def filter_remove(self, name: str) -> None:
        sh("ip", "netns", "exec", self.fabric, "nft", "delete", "table", "bridge", f"halab_{name}", check=False)
        self._state["filters"] = [f for f in self._state.get("filters", []) if f != name]
        self._save_state()

    def heal(self) -> None:
        """Undo every filter (partitions, packet loss) and cut NIC: the lab's network back as built."""
        for name in list(self._state.get("filters", [])):
            self.filter_remove(name)
        for node, net in list(self._state["cut"]):
            self.restore(node, net)


def _kill(pid: int) -> None:
    signal_pid(pid, signal.SIGKILL)


def _killpg(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
