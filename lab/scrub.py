"""Keep a lab's secrets out of everything a run leaves behind (lab/evidence.py, lab/bundle.py).

Every secret the lab generates (provision/secrets.py), what is derived from one (the clustercheck password, the
MySQL password hashes) and the private keys the lab makes (fencing, Vagrant) is known here in every form it may take
in a text: as is, and for the corosync authkey its raw bytes, hex (both cases) and base64 (whole and as `base64`
wraps it). A Scrubber replaces each form with «redacted:<name>» on bytes, so raw key bytes are found too; `find`
is the grep a packed bundle must pass."""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from provision.secrets import Secrets
from provision.secrets import read as read_secrets

if TYPE_CHECKING:
    from provision.context import Context

# Shorter than this, a "secret" would match by accident all over a log: every real one is far longer.
MIN_FORM = 12
# Files under a lab's state dir holding private keys it generated: fence_host.py's sshd keys (fence_virsh logs in
# with client_key, copied into the nodes as /etc/halab/fence_key) and Vagrant's per-machine keys (libvirt).
KEY_FILES = ("fence/client_key", "fence/host_key", "vagrant/machines/*/libvirt/private_key")


def marker(name: str) -> str:
    return f"«redacted:{name}»"


@dataclass(frozen=True)
class Secret:
    name: str
    forms: tuple[bytes, ...]  # every encoding in which it may appear, longest first


def _text(name: str, value: str) -> Secret:
    return Secret(name, (value.encode(),))


def _native_hash(password: str) -> str:
    """MariaDB's mysql_native_password hash (what mysql.user and a CIB-free dump would show): enough to log in
    with a captured handshake, so as secret as the password."""
    return "*" + hashlib.sha1(hashlib.sha1(password.encode()).digest()).hexdigest().upper()


def _wrapped_b64(raw: bytes, width: int = 76) -> list[bytes]:
    b = base64.b64encode(raw)
    return [b] + [b[i : i + width] for i in range(0, len(b), width)]


def of_secrets(s: Secrets) -> list[Secret]:
    """The secrets of provision/secrets.py and those derived from them."""
    from provision.galera_config import clustercheck_password

    # clustercheck_password reads ctx.secrets only: a stand-in carrying them is the whole context it needs
    clustercheck = clustercheck_password(cast("Context", _SecretsOnly(s)))
    key = s.corosync_authkey
    return [
        _text("mysql_password", s.mysql_password),
        _text("mysql_password_hash", _native_hash(s.mysql_password)),
        _text("rabbitmq_password", s.rabbitmq_password),
        _text("erlang_cookie", s.erlang_cookie),
        _text("keystone_db_password", s.keystone_db_password),
        _text("keystone_admin_password", s.keystone_admin_password),
        _text("glance_db_password", s.glance_db_password),
        _text("glance_service_password", s.glance_service_password),
        _text("cinder_db_password", s.cinder_db_password),
        _text("cinder_service_password", s.cinder_service_password),
        _text("neutron_db_password", s.neutron_db_password),
        _text("neutron_service_password", s.neutron_service_password),
        _text("ceilometer_service_password", s.ceilometer_service_password),
        _text("ceilometer_telemetry_secret", s.ceilometer_telemetry_secret),
        *(_text(f"fernet_key_{i}", k) for i, k in enumerate(s.fernet_keys)),
        *(_text(f"credential_key_{i}", k) for i, k in enumerate(s.credential_keys)),
        _text("clustercheck_password", clustercheck),
        _text("clustercheck_password_hash", _native_hash(clustercheck)),
        Secret(
            "corosync_authkey",
            (key, s.corosync_authkey_hex.lower().encode(), s.corosync_authkey_hex.upper().encode(), *_wrapped_b64(key)),
        ),
    ]


@dataclass(frozen=True)
class _SecretsOnly:
    secrets: Secrets


def of_private_key(name: str, pem: str) -> Secret:
    """A private key file: whole, and each line of its body (a log may quote one line of it)."""
    body = [ln.strip() for ln in pem.splitlines() if ln.strip() and not ln.startswith("-----")]
    return Secret(name, (pem.strip().encode(), *(ln.encode() for ln in body)))


def of_state_dir(state_dir: Path) -> list[Secret]:
    """Every secret of the lab whose state dir this is, read (never created) from its files; [] when it is gone."""
    found: list[Secret] = []
    path = state_dir / "secrets.json"
    if path.exists():
        found += of_secrets(read_secrets(path))
    for pattern in KEY_FILES:
        for key in sorted(state_dir.glob(pattern)):
            text = key.read_text(errors="replace")
            if "PRIVATE KEY" in text:
                found.append(of_private_key(f"private_key:{key.relative_to(state_dir)}", text))
    return found


class Scrubber:
    """Replaces every form of every secret; counts what it replaced, per secret name (never the values)."""

    def __init__(self, secrets: Iterable[Secret]) -> None:
        pairs = [(form, s.name) for s in secrets for form in s.forms if len(form) >= MIN_FORM]
        # longest first: a whole PEM before its lines, base64 whole before its wrapped pieces
        self.forms = sorted(set(pairs), key=lambda p: -len(p[0]))
        self.names = sorted({s.name for s in secrets})
        self.counts: Counter[str] = Counter()

    def __bool__(self) -> bool:
        return bool(self.forms)

    def scrub_bytes(self, data: bytes) -> bytes:
        for form, name in self.forms:
            n = data.count(form)
            if n:
                data = data.replace(form, marker(name).encode())
                self.counts[name] += n
        return data

    def scrub(self, text: str) -> str:
        return self.scrub_bytes(text.encode()).decode(errors="replace")

    def find(self, data: bytes) -> list[str]:
        """The names of the secrets some form of which is in `data` (the bundle's grep)."""
        return sorted({name for form, name in self.forms if form in data})
