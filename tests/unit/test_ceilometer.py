"""provision/ceilometer.py: the central agent runs where ch. 4 puts it (last in the API group), authenticates
against Keystone at the API VIP as its own user, publishes to ch. 3's RabbitMQ VIP, signs with the lab's own secret;
its files are private to its user; its agent's parameters hold no secret; its sample reader reads oslo.messaging's
envelope."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from lab.fault_vocabulary import SERVICE_PROCESS
from lab.scenario import load_scenario
from provision import ceilometer, keystone, ocf_agents
from provision.secrets import load_or_create

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("scenario", "runs"), [("api-cluster", True), ("variants/api-variant", True),
                                                ("active-active", False), ("active-passive", False)])  # fmt: skip
def test_the_agent_runs_in_ch4s_api_group_only(scenario: str, runs: bool) -> None:
    assert ceilometer.enabled(load_scenario(str(REPO / f"scenarios/{scenario}.yaml"))) is runs


@pytest.mark.parametrize("path", ["scenarios/api-cluster.yaml", "scenarios/variants/api-variant.yaml"])
def test_settings_use_the_api_vips_keystone_ch3s_broker_and_the_labs_secrets(path: str, tmp_path: Path) -> None:
    sc = load_scenario(str(REPO / path))
    ctx = SimpleNamespace(scenario=sc, secrets=load_or_create(tmp_path))
    conf = ceilometer.settings(ctx)  # type: ignore[arg-type]
    rabbit = f"{sc.vip_for('rabbitmq').address}:{sc.services['rabbitmq'].port}"
    assert f"transport_url = rabbit://halab:{ctx.secrets.rabbitmq_password}@{rabbit}/\n" in conf
    assert f"auth_url = {keystone.auth_url(sc)}\n" in conf
    assert f"username = {ceilometer.SERVICE_USER}\npassword = {ctx.secrets.ceilometer_service_password}\n" in conf
    assert f"telemetry_secret = {ctx.secrets.ceilometer_telemetry_secret}\n" in conf
    assert f"cfg_file = {ceilometer.POLLING}\n" in conf
    polling = json.loads(ceilometer.polling())["sources"]
    assert polling == [{"name": "halab_central", "interval": ceilometer.POLL_INTERVAL_S,
                        "meters": list(ceilometer.METERS)}]  # fmt: skip


def test_its_files_are_its_users_and_the_configuration_private(tmp_path: Path) -> None:
    put: dict[str, tuple[int, str]] = {}
    provider = SimpleNamespace(
        put=lambda node, path, text, mode=0o644, owner="root:root": put.__setitem__(path, (mode, owner)),
        run=lambda *a, **k: SimpleNamespace(ok=True),
    )
    sc = load_scenario(str(REPO / "scenarios/api-cluster.yaml"))
    ctx = SimpleNamespace(scenario=sc, secrets=load_or_create(tmp_path), provider=provider)
    ceilometer.configure_node(ctx, "api1")  # type: ignore[arg-type]
    assert put[ceilometer.CONF] == (0o600, ceilometer.USER)
    assert put[ceilometer.PROGRAM][0] == 0o755


def test_the_agents_parameters_name_its_program_and_hold_no_secret(tmp_path: Path) -> None:
    secrets = load_or_create(tmp_path)
    params = ocf_agents.ceilometer_params()
    assert params["config"] == ceilometer.CONF and params["binary"] == ceilometer.PROGRAM
    assert params["pid"] == ocf_agents.pid_file(ceilometer.AGENT)
    # kill_service ceilometer finds the launcher by the 15 characters of its name the kernel keeps
    assert Path(params["binary"]).name[:15] == SERVICE_PROCESS["ceilometer"] == ceilometer.PROCESS
    values = " ".join(params.values())
    assert not any(s in values for s in (secrets.ceilometer_service_password, secrets.ceilometer_telemetry_secret,
                                         secrets.rabbitmq_password, secrets.keystone_admin_password))  # fmt: skip


def test_a_sample_is_read_out_of_oslo_messagings_envelope() -> None:
    """The reader's parsing, on a body as oslo.messaging's rabbit driver sends a Ceilometer sample."""
    spec = importlib.util.spec_from_file_location("ceilometer_samples", ceilometer.FILES / "ceilometer_samples.py")
    assert spec is not None and spec.loader is not None
    reader = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reader)
    sample = {"counter_name": "image.size", "resource_id": "img-1", "counter_volume": 12813,
              "timestamp": "2026-12-07T01:39:05.497000"}  # fmt: skip
    inner = {"priority": "SAMPLE", "event_type": "telemetry.polling", "payload": {"samples": [sample]}}
    body = json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(inner)}).encode()
    want = [{"meter": "image.size", "resource": "img-1", "volume": 12813, "at": 1796607545.497}]
    assert reader.samples(body) == want
    assert reader.samples(json.dumps(inner).encode()) == want  # without the envelope
