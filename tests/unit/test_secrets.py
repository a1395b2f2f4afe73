import stat
from pathlib import Path

import pytest

from provision.secrets import _password, load_or_create

pytestmark = pytest.mark.unit


def test_passwords_never_start_with_a_dash_rabbitmqctl_would_read_as_an_option() -> None:
    assert all(not _password().startswith("-") and len(_password()) == 24 for _ in range(2000))


def test_secrets_are_generated_once_and_private(tmp_path: Path) -> None:
    first = load_or_create(tmp_path)
    assert load_or_create(tmp_path) == first
    assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600


def test_a_lab_made_before_keystone_gets_its_secrets_and_keeps_the_others(tmp_path: Path) -> None:
    import base64
    import json

    old = load_or_create(tmp_path)
    path = tmp_path / "secrets.json"
    data = json.loads(path.read_text())
    for key in ("keystone_db_password", "keystone_admin_password", "fernet_keys", "credential_keys",
                "glance_db_password", "glance_service_password"):  # fmt: skip
        del data[key]
    path.write_text(json.dumps(data))
    new = load_or_create(tmp_path)
    assert (new.mysql_password, new.erlang_cookie) == (old.mysql_password, old.erlang_cookie)
    assert new.keystone_admin_password and new.keystone_db_password != new.keystone_admin_password
    assert new.glance_service_password and new.glance_db_password not in {new.glance_service_password, ""}
    assert len(new.fernet_keys) == 2 and len(set(new.fernet_keys + new.credential_keys)) == 4
    assert all(len(base64.urlsafe_b64decode(k)) == 32 for k in new.fernet_keys)  # what Fernet accepts
    assert load_or_create(tmp_path) == new  # saved: generated once
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_lab_made_by_a_newer_checkout_loads_and_keeps_what_this_one_does_not_know(tmp_path: Path) -> None:
    """Checkouts share the state root: one lab's secrets.json may hold a field an older checkout lacks (CI's clone
    read the main checkout's: `Secrets.__init__() got an unexpected keyword argument`)."""
    import json

    old = load_or_create(tmp_path)
    path = tmp_path / "secrets.json"
    data = json.loads(path.read_text())
    del data["cinder_db_password"]  # this checkout fills it in and saves the file again
    path.write_text(json.dumps(data | {"swift_password": "pnewer"}))
    new = load_or_create(tmp_path)
    assert new.mysql_password == old.mysql_password and new.cinder_db_password
    assert json.loads(path.read_text())["swift_password"] == "pnewer"


def test_the_broker_password_goes_on_stdin_never_into_a_command_line(tmp_path: Path) -> None:
    """A failed command's text lands in errors, logs and reports: rabbitmqctl add_user reads the password from
    stdin when the argument is left out."""
    from types import SimpleNamespace

    from provision import rabbitmq

    calls: list[tuple[str, bytes | None]] = []

    def run(node: str, cmd: str, **kw: object) -> SimpleNamespace:
        calls.append((cmd, kw.get("input")))  # type: ignore[arg-type]
        return SimpleNamespace(ok=True, rc=0, stdout="guest\t[administrator]\n", stderr="")

    secrets = load_or_create(tmp_path)
    ctx = SimpleNamespace(provider=SimpleNamespace(run=run), secrets=secrets)
    rabbitmq.create_client_account(ctx, "node1")  # type: ignore[arg-type]
    pw = secrets.rabbitmq_password
    assert not [cmd for cmd, _ in calls if pw in cmd]
    assert [cmd for cmd, given in calls if given == pw.encode()] == [f"rabbitmqctl {rabbitmq.NODE} -q add_user halab"]
