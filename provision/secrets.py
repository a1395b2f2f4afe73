"""Per-lab secrets: generated once, kept 0600 in the lab's state dir, never the guide's samples."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Secrets:
    mysql_password: str
    rabbitmq_password: str
    erlang_cookie: str
    corosync_authkey_hex: str  # 128 random bytes; corosync wants at least 128 bytes

    @property
    def corosync_authkey(self) -> bytes:
        return bytes.fromhex(self.corosync_authkey_hex)


def _password() -> str:
    """24 URL-safe characters that never start with '-': `rabbitmqctl add_user halab -x…` reads a leading dash as
    an option and fails (exit 64), as a run here did."""
    return "p" + secrets.token_urlsafe(18)[1:]


def load_or_create(state_dir: Path) -> Secrets:
    path = state_dir / "secrets.json"
    if path.exists():
        return Secrets(**json.loads(path.read_text()))
    s = Secrets(
        mysql_password=_password(),
        rabbitmq_password=_password(),
        # Erlang cookies are printable; upper-case letters as rabbitmq's own generator makes.
        erlang_cookie="".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(20)),
        corosync_authkey_hex=secrets.token_bytes(128).hex(),
    )
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(s), fh)
    return s
