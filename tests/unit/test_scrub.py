"""lab/scrub.py: every secret of a lab, in every form it may take, replaced by «redacted:<name>», in each kind of
text a bundle collects; the grep finds what is left."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from pathlib import Path
from types import SimpleNamespace

import pytest

from lab.scrub import MIN_FORM, Scrubber, Secret, marker, of_private_key, of_secrets, of_state_dir
from provision import galera
from provision.secrets import Secrets, load_or_create

pytestmark = pytest.mark.unit

PEM = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "QyNTUxOQAAACBzZWNyZXQtYm9keS1saW5lLW9mLWEtdGVzdC1rZXktbm90LXJlYWwtMTIz\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)


@pytest.fixture
def lab_secrets(tmp_path: Path) -> Secrets:
    return load_or_create(tmp_path / "state")


def by_name(secrets: list[Secret]) -> dict[str, Secret]:
    return {s.name: s for s in secrets}


def kinds_of_input(value: bytes) -> dict[str, bytes]:
    """One secret planted in each kind of text a bundle collects."""
    return {
        "command output": b"Cluster status of node rabbit@localhost ...\n" + value + b"\nRunning Nodes\n",
        "log line": b"Dec 01 13:30:27 [59] node2 corosync notice  [MAIN  ] key " + value + b" loaded\n",
        "config file": b"[client]\nuser = clustercheck\npassword = " + value + b"\nsocket = /run/mysqld/mysqld.sock\n",
        "pe-input": b'<cib><nvpair id="x" name="passwd" value="' + value + b'"/></cib>\n',
        "json": b'{"sql": {"user": "halab", "password": "' + value + b'"}}',
    }


def test_every_text_secret_of_a_lab_is_one_the_scrubber_knows(lab_secrets: Secrets) -> None:
    """A field added to provision/secrets.py is scrubbed under its own name, or the test names it."""
    texts = {f.name for f in dataclasses.fields(Secrets) if f.type == "str" and not f.name.endswith("_hex")}
    assert texts - {s.name for s in of_secrets(lab_secrets)} == set()


def test_every_secret_in_every_kind_of_input_is_redacted(lab_secrets: Secrets) -> None:
    secrets = of_secrets(lab_secrets)
    assert {s.name for s in secrets} >= {
        "mysql_password",
        "rabbitmq_password",
        "erlang_cookie",
        "corosync_authkey",
        "clustercheck_password",
        "keystone_db_password",
        "keystone_admin_password",
        "glance_db_password",
        "glance_service_password",
        "cinder_db_password",
        "cinder_service_password",
        "neutron_db_password",
        "neutron_service_password",
        "ceilometer_service_password",
        "ceilometer_telemetry_secret",
        "fernet_key_0",
        "fernet_key_1",
        "credential_key_0",
        "credential_key_1",
    }
    for s in secrets:
        for form in s.forms:
            for kind, text in kinds_of_input(form).items():
                scrubber = Scrubber(secrets)
                out = scrubber.scrub_bytes(text)
                assert scrubber.find(out) == [], f"{s.name} left in {kind}"
                assert marker(s.name).encode() in out, f"{s.name} not marked in {kind}"
                assert scrubber.counts[s.name] >= 1


def test_the_authkey_is_found_raw_hex_and_base64(lab_secrets: Secrets) -> None:
    key = by_name(of_secrets(lab_secrets))["corosync_authkey"]
    raw = lab_secrets.corosync_authkey
    assert raw in key.forms and len(raw) == 128
    assert lab_secrets.corosync_authkey_hex.upper().encode() in key.forms
    assert lab_secrets.corosync_authkey_hex.lower().encode() in key.forms
    wrapped = base64.encodebytes(raw)  # what `base64 /etc/corosync/authkey` prints: 76 columns
    out = Scrubber([key]).scrub_bytes(b"authkey:\n" + wrapped)
    assert Scrubber([key]).find(out) == [] and out.count(b"redacted:corosync_authkey") == len(wrapped.splitlines())
    assert Scrubber([key]).scrub_bytes(b"\x00" + raw + b"\xff") == b"\x00" + marker(key.name).encode() + b"\xff"


def test_derived_secrets_are_the_provisioned_ones(lab_secrets: Secrets) -> None:
    found = by_name(of_secrets(lab_secrets))
    clustercheck = galera.clustercheck_password(SimpleNamespace(secrets=lab_secrets))  # type: ignore[arg-type]
    assert found["clustercheck_password"].forms == (clustercheck.encode(),)
    native = "*" + hashlib.sha1(hashlib.sha1(lab_secrets.mysql_password.encode()).digest()).hexdigest().upper()
    assert found["mysql_password_hash"].forms == (native.encode(),)


def test_a_private_key_is_redacted_whole_and_line_by_line() -> None:
    key = of_private_key("private_key:fence/client_key", PEM)
    s = Scrubber([key])
    whole = s.scrub(f"key file:\n{PEM}end\n")
    assert whole == "key file:\n«redacted:private_key:fence/client_key»\nend\n"
    one_line = PEM.splitlines()[2]
    assert s.scrub(f"debug: {one_line}") == "debug: «redacted:private_key:fence/client_key»"
    assert "BEGIN OPENSSH" not in " ".join(f.decode() for f in key.forms[1:])


def test_the_state_dir_is_read_never_created(tmp_path: Path) -> None:
    assert of_state_dir(tmp_path / "gone") == [] and not (tmp_path / "gone").exists()
    state = tmp_path / "state"
    s = load_or_create(state)
    (state / "fence").mkdir()
    (state / "fence" / "client_key").write_text(PEM)
    (state / "fence" / "client_key.pub").write_text("ssh-ed25519 AAAAC3Nz public\n")
    machine = state / "vagrant" / "machines" / "node1" / "libvirt"
    machine.mkdir(parents=True)
    (machine / "private_key").write_text(PEM.replace("c2VjcmV0", "b3RoZXIx"))
    found = by_name(of_state_dir(state))
    assert found["mysql_password"].forms == (s.mysql_password.encode(),)
    assert {"private_key:fence/client_key", "private_key:vagrant/machines/node1/libvirt/private_key"} <= set(found)
    assert not any("pub" in n for n in found)


def test_short_forms_are_ignored_and_find_names_what_is_left() -> None:
    s = Scrubber([Secret("tiny", (b"abc",)), Secret("real", (b"x" * MIN_FORM,))])
    assert s.scrub("abc " + "x" * MIN_FORM) == "abc «redacted:real»"
    assert s.find(b"..." + b"x" * MIN_FORM) == ["real"] and s.find(b"abc") == []
    assert not Scrubber([]) and Scrubber([]).scrub_bytes(b"as is") == b"as is"
