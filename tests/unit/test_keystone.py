"""provision/keystone.py: Keystone's settings come from the scenario and the lab's secrets (never the guide's
samples); its admin password goes on stdin, never into a command line; the API stand-in leaves its ports alone."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from lab.scenario import Scenario, load_scenario
from lab.wait import WaitTimeout
from lab.workload import identity
from lab.workload.config import Endpoint
from provision import api, keystone, memcached
from provision.secrets import load_or_create

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["scenarios/active-active.yaml", "scenarios/variants/aa-variant.yaml"])
def scenario(request: pytest.FixtureRequest) -> Scenario:
    return load_scenario(str(REPO / request.param))


def ctx_for(scenario: Scenario, tmp_path: Path, run=None):  # type: ignore[no-untyped-def]
    provider = SimpleNamespace(run=run, put=None, emulated=False)
    return SimpleNamespace(scenario=scenario, secrets=load_or_create(tmp_path), provider=provider)


def test_settings_point_at_the_database_vip_and_every_memcached(scenario: Scenario, tmp_path: Path) -> None:
    ctx = ctx_for(scenario, tmp_path)
    conf = keystone.settings(ctx)  # type: ignore[arg-type]
    db_vip = scenario.vips[scenario.services["galera"].vip].address
    assert f"@{db_vip}:{scenario.services['galera'].port}/keystone\n" in conf
    assert ctx.secrets.keystone_db_password in conf
    assert f"memcache_servers = {','.join(memcached.client_servers(scenario))}\n" in conf
    assert conf.count(f"key_repository = {keystone.FERNET_DIR}\n") == 2  # tokens and MFA receipts
    assert "provider = fernet\n" in conf and f"password_hash_rounds = {keystone.HASH_ROUNDS}\n" in conf


def test_uwsgi_binds_each_keystone_port_on_the_nodes_own_address(scenario: Scenario, tmp_path: Path) -> None:
    ctx = ctx_for(scenario, tmp_path)
    node = keystone.nodes(scenario)[1]
    net = scenario.vips[scenario.services["keystone-public"].vip].network
    cmd = keystone.command(ctx, node)  # type: ignore[arg-type]
    for port in keystone.ports(scenario).values():
        assert f"--http-socket {scenario.nodes[node].addresses[net]}:{port} " in cmd
    assert cmd.startswith("setpriv --reuid=keystone") and f"OS_KEYSTONE_CONFIG_FILES={keystone.CONF}" in cmd


def test_the_catalog_is_at_the_vip(scenario: Scenario) -> None:
    vip = scenario.vips[scenario.services["keystone-public"].vip].address
    assert keystone.auth_url(scenario) == f"http://{vip}:{scenario.services['keystone-public'].port}/v3/"


def test_the_stand_in_serves_no_keystone_port(scenario: Scenario) -> None:
    assert not set(api.api_ports(scenario)) & set(keystone.SERVICES)
    assert keystone.enabled(scenario)


def test_bootstrap_takes_the_admin_password_on_stdin(scenario: Scenario, tmp_path: Path) -> None:
    calls: list[tuple[str, bytes | None]] = []

    def run(node: str, cmd: str, **kw: object) -> SimpleNamespace:
        calls.append((cmd, kw.get("input")))  # type: ignore[arg-type]
        return SimpleNamespace(ok=True, rc=0, stdout="", stderr="")

    ctx = ctx_for(scenario, tmp_path, run)
    keystone.initialise(ctx, keystone.nodes(scenario)[0])  # type: ignore[arg-type]
    pw = ctx.secrets.keystone_admin_password
    assert not [cmd for cmd, _ in calls if pw in cmd or ctx.secrets.keystone_db_password in cmd]
    boot = [cmd for cmd, given in calls if given == (pw + "\n").encode()]
    assert len(boot) == 1 and "bootstrap" in boot[0] and keystone.auth_url(scenario) in boot[0]
    assert any("db_sync" in cmd for cmd, _ in calls)


def test_the_identity_client_authenticates_with_the_endpoints_account() -> None:
    import json

    body = json.loads(identity.auth_body(Endpoint("keystone", "10.0.0.10", 5000, "admin", "pw-x")))
    user = body["auth"]["identity"]["password"]["user"]
    assert (user["name"], user["password"]) == ("admin", "pw-x")
    assert body["auth"]["scope"]["project"]["name"] == identity.PROJECT


def test_await_answers_tolerates_one_glimpse_of_a_daemon_not_running_and_fails_on_two() -> None:
    """A daemon that pgrep misses once (mid-exec) and then answers is waited for; one gone on two polls in a row
    fails the wait at once, naming the node and its log, long before the deadline."""
    answers = iter(["refused", "201"])
    seen_running = iter([False, True])
    keystone.await_answers({"controller1": "u"}, lambda u: next(answers), "201", lambda n: next(seen_running),
                           ("keystone's uwsgi", "/var/log/k.log"), timeout=5)  # fmt: skip
    t0 = time.monotonic()
    with pytest.raises(WaitTimeout, match="keystone's uwsgi is not running on controller1: see /var/log/k.log"):
        keystone.await_answers({"controller1": "u"}, lambda u: "refused", "201", lambda n: False,
                               ("keystone's uwsgi", "/var/log/k.log"), timeout=30)  # fmt: skip
    assert time.monotonic() - t0 < 5
