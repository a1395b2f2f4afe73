"""The host end of fence_virsh: an sshd of the lab's own, in the lab's libvirt namespace, listening only on the
management network's host address, accepting only a key generated for this lab. fence_virsh in a guest logs in
there and runs `virsh destroy/start <domain>` against the lab's libvirtd; nothing else of the host is reachable
(the sshd lives in the lab namespace and dies with it)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lab.providers.base import ProviderError
from lab.providers.common import starttime
from lab.wait import until

# sshd writes its pid file within milliseconds of binding; a loaded host needs a few seconds at most.
START_S = 15


@dataclass(frozen=True)
class FenceTarget:
    """What a guest's fence_virsh needs: where to log in, as whom, with which key, and the host key to trust."""

    address: str
    user: str
    private_key: str
    known_host: str


def start(state_dir: Path, prefix: list[str], address: str) -> tuple[FenceTarget, list]:
    """Start the sshd (keys made on first use); return the target and sshd's [pid, start time]."""
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd).exists():
        raise ProviderError("fencing needs an sshd on the host for fence_virsh: apt-get install openssh-server")
    d = state_dir / "fence"
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    for key, kind in (("host_key", "ed25519"), ("client_key", "ed25519")):
        if not (d / key).exists():
            subprocess.run(
                ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", f"halab-fence-{key}", "-f", str(d / key)],
                check=True,
                capture_output=True,
            )
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    (d / "authorized_keys").chmod(0o600)
    pidfile = d / "sshd.pid"
    pidfile.unlink(missing_ok=True)
    (d / "sshd_config").write_text(
        "\n".join(
            [
                f"ListenAddress {address}",
                f"HostKey {d / 'host_key'}",
                f"AuthorizedKeysFile {d / 'authorized_keys'}",
                f"PidFile {pidfile}",
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                # the state dir is root's but not in a root-only tree everywhere; the key files are 0600 anyway
                "StrictModes no",
                "AllowUsers root",
                "",
            ]
        )
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    subprocess.run([*prefix, sshd, "-f", str(d / "sshd_config")], check=True, capture_output=True)
    pid = until(
        lambda: int(pidfile.read_text().split()[0]) if pidfile.exists() and pidfile.read_text().strip() else None,
        timeout=START_S,
        what=f"the fencing sshd to listen on {address}",
    )
    host_pub = (d / "host_key.pub").read_text().split()
    target = FenceTarget(address, "root", (d / "client_key").read_text(), f"{address} {host_pub[0]} {host_pub[1]}")
    return target, [pid, starttime(pid)]


def stop(identity: list | None) -> None:
    """SIGTERM the sshd, only if that PID is still the process we started (PIDs are reused)."""
    pid, start = (identity or [None, None])[:2]
    if pid and starttime(pid) == start:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
