"""libvirt provider, commands: as root over SSH (fabric, from `vagrant ssh-config`, lab/providers/ssh.py) in a VM,
`ip netns exec` in a client namespace; and what every boot of a VM ends with (SSH answers, the node is prepared)."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from lab.providers.base import ProviderError, Result
from lab.providers.common import daemon_command, put_command, spawn_in_netns
from lab.providers.libvirt_node import BOOT_S, LibvirtNode
from lab.wait import until

CLIENT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What the netns provider's node init makes: daemons started by hand (not by their units) expect them.
NODE_PREP = (
    "mkdir -p /run/crm /run/mysqld /run/rabbitmq /run/lock /var/log/pacemaker /var/log/mysql /var/log/rabbitmq "
    "/var/log/crmsh /var/log/corosync /var/log/halab /run/haproxy /run/keepalived /var/lib/pacemaker/cib "
    "/var/lib/pacemaker/pengine /var/lib/pacemaker/blackbox /var/lib/pacemaker/cores && "
    "chown -R hacluster:haclient /var/lib/pacemaker /run/crm /var/log/pacemaker && "
    "chown mysql:mysql /run/mysqld /var/log/mysql /var/lib/mysql && "
    "chown rabbitmq:rabbitmq /run/rabbitmq /var/log/rabbitmq /var/lib/rabbitmq"
)


class LibvirtCommands(LibvirtNode):
    def _remote(self, node: str):  # noqa: ANN202 - lab.providers.ssh.Remote
        from lab.providers.ssh import Remote, connection

        with self._lock:
            if node not in self._remotes:
                conf = self.vagrant().conf(vm_name=node)
                if not conf:
                    raise ProviderError(f"`vagrant ssh-config {node}` gave nothing: is {node} up?")
                self._remotes[node] = Remote(node, connection(conf, self.ns_prefix))
            return self._remotes[node]

    def command_argv(self, node: str, argv: Sequence[str], *, tty: bool = False) -> list[str]:
        """A host command line running `argv` as root in the node with the caller's stdio: ssh from inside the
        lab's namespace for a VM (where its management bridge is), `ip netns exec` for a client namespace."""
        if node in self.client_nodes:
            return ["ip", "netns", "exec", self.client_netns(node), *argv]
        if not self.is_running(node):
            raise ProviderError(f"node {node} is not running (powered off or lab not up): restart it")
        conf = self.vagrant().conf(vm_name=node)
        if not conf:
            raise ProviderError(f"`vagrant ssh-config {node}` gave nothing: is {node} up?")
        ssh = ["ssh", "-i", conf["IdentityFile"].strip('"'), "-p", str(conf.get("Port", 22)), "-o", "LogLevel=ERROR"]
        ssh += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes"]
        remote = "sudo -i" if not argv else "sudo " + shlex.join(argv)
        login = f"{conf.get('User', 'vagrant')}@{conf['HostName']}"
        return [*self.ns_prefix, *ssh, "-t" if tty else "-T", login, remote]

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
        if node in self.client_nodes:
            res = self._run_client(node, cmd, timeout=timeout, env=env, input=input)
        else:
            if not self.is_running(node):
                raise ProviderError(f"node {node} is not running (powered off or lab not up): restart it")
            res = self._remote(node).run(cmd, timeout=timeout, env=env, input=input)
        return res.check() if check else res

    def _run_client(
        self, node: str, cmd: str, *, timeout: float, env: Mapping[str, str] | None, input: bytes | None
    ) -> Result:
        full_env = {"PATH": CLIENT_PATH, "LANG": "C.UTF-8", "HOME": "/root", **(env or {})}
        try:
            p = subprocess.run(
                ["ip", "netns", "exec", self.client_netns(node), "sh", "-c", cmd],
                input=input,
                capture_output=True,
                timeout=timeout,
                env=full_env,
            )
        except subprocess.TimeoutExpired as exc:
            return Result(node, cmd, 124, (exc.stdout or b"").decode(), f"(timed out after {timeout:.0f}s)")
        return Result(node, cmd, p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))

    def put(self, node: str, path: str, content: str | bytes, *, mode: int = 0o644, owner: str = "root:root") -> None:
        data = content.encode() if isinstance(content, str) else content
        self.run(node, put_command(path, mode, owner), input=data, check=True, timeout=60)

    def start_daemon(self, node: str, cmd: str, log: str) -> None:
        self.run(node, daemon_command(cmd, log), check=True, timeout=30)

    def spawn(self, node: str, argv: Sequence[str], *, log: Path) -> subprocess.Popen[bytes]:
        if node not in self.client_nodes:
            raise ProviderError(f"workloads run on client nodes; {node} is a VM")
        return spawn_in_netns(self.client_netns(node), argv, log)

    # ---------------------------------------------------------------- after a boot
    def _prepare(self, node: str) -> None:
        """What a node needs before the roles: the scenario's /etc/hosts (rabbitmq and corosync resolve peers by
        name; Vagrant's `127.0.1.1 <hostname>` line would point a node's name at loopback) and runtime dirs."""
        hosts = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
        for other in self.scenario.nodes.values():
            hosts.append(f"{next(iter(other.addresses.values()))} {other.name}")
        self.put(node, "/etc/hosts", "\n".join(hosts) + "\n")
        self.run(node, NODE_PREP, check=True, timeout=60)

    def _wait_ssh(self, node: str) -> None:
        until(
            lambda: self._try(node, "true"),
            timeout=BOOT_S,
            interval=1,
            what=f"{node} to boot and answer over SSH",
            seen=lambda: f"domain state {self.domain(node).state()}",
        )

    def _try(self, node: str, cmd: str) -> bool:
        try:
            return self._remote(node).run(cmd, timeout=10).ok
        except ProviderError:
            self._forget(node)
            return False
