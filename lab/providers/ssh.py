"""Commands on a VM over SSH: a fabric Connection per node, built from `vagrant ssh-config`, reached
through the lab's network namespace (a ProxyCommand `ip netns exec NS socat`), since the management
network's bridge lives there and not in the root namespace."""

from __future__ import annotations

import select
import shlex
import threading
import time
from collections.abc import Mapping

from fabric import Connection

from lab.providers.base import ProviderError, Result

# Opening a session on a live guest takes milliseconds, a second or two under TCG; a suspended guest never
# answers, and callers (the observer among them) must get their answer or an error in bounded time.
CONNECT_S = 20


def connection(conf: Mapping[str, str], netns_prefix: list[str]) -> Connection:
    """A fabric Connection from one host's `vagrant ssh-config` (python-vagrant's `conf()` dict)."""
    host, port = conf["HostName"], int(conf.get("Port", 22))
    proxy = " ".join(shlex.quote(a) for a in [*netns_prefix, "socat", "-", f"TCP:{host}:{port}"])
    return Connection(
        host,
        user=conf.get("User", "vagrant"),
        port=port,
        gateway=proxy if netns_prefix else None,
        connect_timeout=CONNECT_S,
        connect_kwargs={
            "key_filename": conf["IdentityFile"].strip('"'),
            "look_for_keys": False,
            "allow_agent": False,
            "banner_timeout": CONNECT_S,
            "auth_timeout": CONNECT_S,
        },
    )


class Remote:
    """Run shell commands as root on one VM; reconnects after the guest was powered off and on again."""

    def __init__(self, node: str, conn: Connection) -> None:
        self.node = node
        self.conn = conn
        self._lock = threading.Lock()  # one connect at a time; channels themselves run in parallel

    def close(self) -> None:
        self.conn.close()

    def _transport(self):  # noqa: ANN202 - paramiko.Transport
        with self._lock:
            t = self.conn.client.get_transport() if self.conn.is_connected else None
            if t is None or not t.is_active():
                self.conn.close()
                self.conn.open()
                t = self.conn.client.get_transport()
            return t

    def run(
        self,
        cmd: str,
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
        input: bytes | None = None,
    ) -> Result:
        envs = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
        # `timeout` in the guest too: a command that outlives its deadline must not keep running there.
        full = f"sudo -n env {envs} timeout -k 5 {max(1, int(timeout))} sh -c {shlex.quote(cmd)}"
        try:
            chan = self._transport().open_session(timeout=CONNECT_S)
        except Exception as exc:  # paramiko raises a zoo (SSHException, EOFError, socket errors, NoValidConnections)
            raise ProviderError(f"{self.node}: cannot open an SSH session: {exc!r}") from exc
        try:
            chan.exec_command(full)
            if input:
                chan.sendall(input)
            chan.shutdown_write()
            out, err = bytearray(), bytearray()
            deadline = time.monotonic() + timeout + 10
            while True:
                while chan.recv_ready():
                    out += chan.recv(65536)
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                    rc = chan.recv_exit_status()
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    rc, err = 124, err + f"\n(timed out after {timeout:.0f}s)".encode()
                    break
                select.select([chan], [], [], min(left, 1.0))
        finally:
            chan.close()
        return Result(self.node, cmd, rc, out.decode(errors="replace"), err.decode(errors="replace"))
