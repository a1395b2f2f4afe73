"""provision/glance.py and the Glance client: Glance's settings come from the scenario and the lab's secrets; it
binds each controller's own address and keeps images in the one shared store; its registration and probes take
their secrets on stdin; the image-intact checker fails on every way an image can be lost or changed."""

from __future__ import annotations

import dataclasses
import hashlib
import py_compile
from pathlib import Path
from types import SimpleNamespace

import pytest

from lab.checks.durability import image_intact
from lab.history import FAIL, INVOKE, OK, History, Op
from lab.scenario import Scenario, load_scenario
from lab.workload.image import SIZE, image_data
from provision import api, glance, keystone, memcached
from provision.secrets import load_or_create

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["scenarios/active-active.yaml", "scenarios/variants/aa-variant.yaml"])
def scenario(request: pytest.FixtureRequest) -> Scenario:
    return load_scenario(str(REPO / request.param))


def test_settings_bind_the_nodes_own_address_and_use_the_vips_and_the_shared_store(
    scenario: Scenario, tmp_path: Path
) -> None:
    ctx = SimpleNamespace(scenario=scenario, secrets=load_or_create(tmp_path))
    node = glance.nodes(scenario)[-1]
    conf = glance.settings(ctx, node, "/shared/images")  # type: ignore[arg-type]
    net = scenario.vip_for(glance.SERVICE).network
    assert f"bind_host = {scenario.nodes[node].addresses[net]}\n" in conf
    assert f"bind_port = {scenario.services[glance.SERVICE].port}\n" in conf
    db_vip = scenario.vip_for("galera").address
    assert f"@{db_vip}:{scenario.services['galera'].port}/glance\n" in conf
    assert f"auth_url = {keystone.auth_url(scenario)}\n" in conf
    assert f"memcached_servers = {','.join(memcached.client_servers(scenario))}\n" in conf
    assert "[shared]\nfilesystem_store_datadir = /shared/images\n" in conf
    assert ctx.secrets.glance_db_password in conf and ctx.secrets.glance_service_password in conf
    assert glance.url(scenario) == f"http://{scenario.vip_for(glance.SERVICE).address}:9292/"


def test_glance_takes_its_port_from_the_stand_in_only_with_keystone(scenario: Scenario) -> None:
    assert glance.enabled(scenario)
    assert glance.SERVICE not in api.api_ports(scenario)
    without = dataclasses.replace(
        scenario, services={k: v for k, v in scenario.services.items() if k not in keystone.SERVICES}
    )
    assert not glance.enabled(without) and glance.SERVICE in api.api_ports(without)  # the stand-in's again


def test_the_launcher_is_named_glance_api_and_runs_unprivileged(tmp_path: Path) -> None:
    from lab.fault_vocabulary import SERVICE_PROCESS

    for name in ("glance-api", "os_probe.py", "keystone_register.py"):
        py_compile.compile(str(glance.FILES / name), cfile=str(tmp_path / f"{name}.pyc"), doraise=True)
    assert Path(glance.PROGRAM).name == glance.PROCESS == SERVICE_PROCESS["glance"]  # what kill_service looks for
    assert glance.command().startswith("setpriv --reuid=glance --regid=glance")
    assert keystone.USER != glance.USER  # neither reads the other's 0600 files


def test_registration_and_probes_read_their_secrets_on_stdin(scenario: Scenario, tmp_path: Path) -> None:
    ran: list[tuple[str, bytes | None]] = []

    def run(node, cmd, *, input=None, check=False, timeout=60.0):  # type: ignore[no-untyped-def]
        ran.append((cmd, input))
        return SimpleNamespace(ok=True, rc=0, stdout="200\n", stderr="")

    secrets = load_or_create(tmp_path)
    provider = SimpleNamespace(run=run, put=lambda *a, **k: None, emulated=False)
    ctx = SimpleNamespace(scenario=scenario, secrets=secrets, provider=provider)
    glance.initialise(ctx, glance.nodes(scenario)[0])  # type: ignore[arg-type]
    assert glance.images_status(ctx, "client", glance.url(scenario)) == "200"  # type: ignore[arg-type]
    for secret in (secrets.keystone_admin_password, secrets.glance_service_password, secrets.glance_db_password):
        assert all(secret not in cmd for cmd, _ in ran), "a secret on a command line"
    stdin = b"".join(i or b"" for _, i in ran)
    assert secrets.glance_service_password.encode() in stdin and secrets.keystone_admin_password.encode() in stdin


def test_the_image_is_the_same_bytes_for_the_same_run() -> None:
    assert image_data(7) == image_data(7) != image_data(8)
    assert len(image_data(7)) == SIZE


# ------------------------------------------------------------------------------------------- image-intact

DIGEST = hashlib.sha256(b"x").hexdigest()


def run(*ops: tuple[float, str, str, object, str | None]) -> History:
    return History([Op(t, "glance-client", type, f, value, "glance", error) for t, type, f, value, error in ops])


def uploaded(at: float = 1.0) -> list[tuple[float, str, str, object, str | None]]:
    return [(at - 0.1, INVOKE, "upload", 1, None), (at, OK, "upload", DIGEST, None)]


def test_an_image_downloaded_whole_after_the_fault_passes() -> None:
    h = run(*uploaded(), (5.0, OK, "list", "id", None), (6.0, OK, "download", DIGEST, None))
    c = image_intact(h, "glance", since=2.0)
    assert c.passed and "1 downloads after it" in c.detail


@pytest.mark.parametrize(
    ("ops", "says"),
    [
        ([(6.0, FAIL, "download", 3, f"checksum mismatch: sha256 00 (1 bytes), uploaded {DIGEST}")], "1 with another"),
        ([(5.0, FAIL, "list", 3, "image i not listed (listed: [])"), (6.0, OK, "download", DIGEST, None)], "gone"),
        ([(5.0, FAIL, "download", 3, "404 Not Found"), (6.0, OK, "download", DIGEST, None)], "gone"),
        ([(5.0, FAIL, "download", 3, "204 image i has no data: gone"), (6.0, OK, "download", DIGEST, None)], "gone"),
        ([(1.5, OK, "download", DIGEST, None)], "none downloaded after the fault"),
    ],
)
def test_an_image_changed_gone_or_never_read_after_the_fault_fails(ops: list, says: str) -> None:
    c = image_intact(run(*uploaded(), *ops), "glance", since=2.0)
    assert not c.passed and says in c.detail, c.detail


def test_a_failed_connect_or_a_renewed_token_says_nothing_of_the_image() -> None:
    h = run(*uploaded(), (3.0, FAIL, "download", 3, "connect: [Errno 113] No route to host"),
            (4.0, FAIL, "list", 4, "401 The request you have made requires authentication."),
            (6.0, OK, "download", DIGEST, None))  # fmt: skip
    assert image_intact(h, "glance", since=2.0).passed


def test_no_upload_or_one_after_the_fault_fails() -> None:
    assert not image_intact(run((6.0, OK, "download", DIGEST, None)), "glance", since=2.0).passed
    late = image_intact(run(*uploaded(at=3.0), (6.0, OK, "download", DIGEST, None)), "glance", since=2.0)
    assert not late.passed and "after the fault" in late.detail


def test_a_provider_without_a_shared_directory_refuses_glance_before_building_anything(scenario: Scenario) -> None:
    from lab.providers import ProviderError
    from lab.session import Lab
    from provision import active_active, active_passive

    def lab(provider: object, sc: Scenario = scenario, pb: object = active_active) -> SimpleNamespace:
        return SimpleNamespace(playbook=pb, scenario=sc, provider=provider, provider_name="libvirt")

    with pytest.raises(ProviderError, match=rf"{scenario.path}: services.{glance.SERVICE} .* --provider netns"):
        Lab._needs(lab(SimpleNamespace(shared_directories=False)))  # type: ignore[arg-type]
    Lab._needs(lab(SimpleNamespace(shared_directories=True)))  # type: ignore[arg-type]
    ap = load_scenario(str(REPO / "scenarios/active-passive.yaml"))
    Lab._needs(lab(SimpleNamespace(shared_directories=False), ap, active_passive))  # type: ignore[arg-type]
