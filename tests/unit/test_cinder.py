"""provision/cinder.py: Cinder runs where ch. 4 puts it (a Pacemaker group), bound to the API VIP as the guide
writes it, with its database in ch. 3's MySQL and RPC to ch. 3's RabbitMQ, both at their VIPs, and the lab's own
secrets; its registration takes them on stdin; its agent gets uwsgi under Cinder's own process name."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from lab.fault_vocabulary import SERVICE_PROCESS
from lab.scenario import load_scenario
from provision import cinder, keystone, ocf_agents
from provision.secrets import load_or_create

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]


def test_settings_bind_the_api_vip_and_use_ch3s_vips_and_the_labs_secrets(tmp_path: Path) -> None:
    sc = load_scenario(str(REPO / "scenarios/api-cluster.yaml"))
    assert cinder.enabled(sc)
    ctx = SimpleNamespace(scenario=sc, secrets=load_or_create(tmp_path))
    conf = cinder.settings(ctx)  # type: ignore[arg-type]
    vip, port = sc.vip_for(cinder.SERVICE).address, sc.services[cinder.SERVICE].port
    assert f"osapi_volume_listen = {vip}\nosapi_volume_listen_port = {port}\n" in conf
    mysql = f"{sc.vip_for('mysql').address}:{sc.services['mysql'].port}"
    assert f"connection = mysql+pymysql://cinder:{ctx.secrets.cinder_db_password}@{mysql}/cinder\n" in conf
    rabbit = f"{sc.vip_for('rabbitmq').address}:{sc.services['rabbitmq'].port}"
    assert f"transport_url = rabbit://halab:{ctx.secrets.rabbitmq_password}@{rabbit}/\n" in conf
    assert f"auth_url = {keystone.auth_url(sc)}\n" in conf and ctx.secrets.cinder_service_password in conf
    assert cinder.endpoint(sc) == f"http://{vip}:{port}/v3/%(project_id)s"
    params = ocf_agents.cinder_params(ctx)  # type: ignore[arg-type]
    assert params["listen"] == f"{vip}:{port}" and params["url"] == f"http://{vip}:{port}/"
    assert Path(params["binary"]).name == SERVICE_PROCESS["cinder"] != SERVICE_PROCESS["keystone"]
    assert not any(s in v for v in params.values() for s in (ctx.secrets.keystone_admin_password,
                                                              ctx.secrets.cinder_db_password))  # fmt: skip


def test_ch9s_controllers_keep_the_stand_in_on_cinders_port() -> None:
    """In the active/active topology cinder-api is in no group: the stand-in serves its port (README)."""
    assert not cinder.enabled(load_scenario(str(REPO / "scenarios/active-active.yaml")))


def test_registration_takes_its_passwords_on_stdin(tmp_path: Path) -> None:
    sc = load_scenario(str(REPO / "scenarios/api-cluster.yaml"))
    calls: list[tuple[str, bytes]] = []
    provider = SimpleNamespace(put=lambda *a, **k: None,
                               run=lambda node, cmd, input=b"", **k: calls.append((cmd, input)))  # fmt: skip
    secrets = load_or_create(tmp_path)
    cinder.register(SimpleNamespace(scenario=sc, secrets=secrets, provider=provider), "api1")  # type: ignore[arg-type]
    (cmd, stdin), = calls
    assert "volumev3" in cmd and secrets.cinder_service_password not in cmd
    assert stdin == f"{secrets.keystone_admin_password}\n{secrets.cinder_service_password}\n".encode()
