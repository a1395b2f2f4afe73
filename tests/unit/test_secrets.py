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
