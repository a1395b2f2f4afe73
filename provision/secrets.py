"""Per-lab secrets: generated once, kept 0600 in the lab's state dir, never the guide's samples."""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path


@dataclass(frozen=True)
class Secrets:
    mysql_password: str
    rabbitmq_password: str
    erlang_cookie: str
    corosync_authkey_hex: str  # 128 random bytes; corosync wants at least 128 bytes
    # Keystone (guide ch. 9): its database user's and its admin's passwords, and the Fernet key repositories'
    # keys (token and credential), the same on every controller so a token issued by one validates on the others.
    # Defaults only for a lab made before Keystone: load_or_create generates them and saves the file again.
    keystone_db_password: str = ""
    keystone_admin_password: str = ""
    fernet_keys: tuple[str, ...] = ()
    credential_keys: tuple[str, ...] = ()
    glance_db_password: str = ""
    glance_service_password: str = ""  # Glance's own user in Keystone (keystonemiddleware checks tokens as it)
    cinder_db_password: str = ""
    cinder_service_password: str = ""
    neutron_db_password: str = ""
    neutron_service_password: str = ""
    ceilometer_service_password: str = ""  # the central agent's user in Keystone ([service_credentials])
    ceilometer_telemetry_secret: str = ""  # signs its samples ([publisher] telemetry_secret; never the default)

    @property
    def corosync_authkey(self) -> bytes:
        return bytes.fromhex(self.corosync_authkey_hex)


def _password() -> str:
    """24 URL-safe characters that never start with '-': `rabbitmqctl add_user halab -x…` reads a leading dash as
    an option and fails (exit 64), as a run here did."""
    return "p" + secrets.token_urlsafe(18)[1:]


def fernet_key() -> str:
    """A Fernet key as keystone-manage fernet_setup writes one: 32 random bytes, URL-safe base64."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _fresh() -> Secrets:
    return Secrets(
        mysql_password=_password(),
        rabbitmq_password=_password(),
        # Erlang cookies are printable; upper-case letters as rabbitmq's own generator makes.
        erlang_cookie="".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(20)),
        corosync_authkey_hex=secrets.token_bytes(128).hex(),
        keystone_db_password=_password(),
        keystone_admin_password=_password(),
        # a repository's key 0 is the staged one, the highest the primary (keystone's rotation scheme)
        fernet_keys=(fernet_key(), fernet_key()),
        credential_keys=(fernet_key(), fernet_key()),
        glance_db_password=_password(),
        glance_service_password=_password(),
        cinder_db_password=_password(),
        cinder_service_password=_password(),
        neutron_db_password=_password(),
        neutron_service_password=_password(),
        ceilometer_service_password=_password(),
        ceilometer_telemetry_secret=_password(),
    )


def read(path: Path) -> Secrets:
    """The secrets saved at `path`; a field it lacks (a lab made before that field) stays at its default, and one
    this version does not know (a lab made by a newer checkout, sharing the state root) is left alone."""
    known = {f.name for f in fields(Secrets)}
    data = {k: v for k, v in json.loads(path.read_text()).items() if k in known}
    for key in ("fernet_keys", "credential_keys"):
        if key in data:
            data[key] = tuple(data[key])
    return Secrets(**data)


def _save(path: Path, s: Secrets, extra: dict[str, object] | None = None) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump((extra or {}) | asdict(s), fh)
    tmp.replace(path)


def load_or_create(state_dir: Path) -> Secrets:
    path = state_dir / "secrets.json"
    extra: dict[str, object] = {}
    if path.exists():
        s = read(path)
        known = {f.name for f in fields(Secrets)}
        extra = {k: v for k, v in json.loads(path.read_text()).items() if k not in known}  # a newer checkout's
        missing = {k: v for k, v in asdict(_fresh()).items() if not getattr(s, k)}
        if not missing:
            return s
        s = replace(s, **missing)  # a lab made before these secrets existed gets them now, saved like the rest
    else:
        s = _fresh()
    state_dir.mkdir(parents=True, exist_ok=True)
    _save(path, s, extra)
    return s
