"""provision/uwsgi_api.py with cinder.py and neutron.py: each API runs where ch. 4 puts it (a Pacemaker group), bound
to the API VIP as the guide writes it, with its database in ch. 3's MySQL and RPC to ch. 3's RabbitMQ, both at their
VIPs, and the lab's own secrets; its registration takes them on stdin; its agent gets uwsgi under the service's own
process name, none of them Keystone's, and no password."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from lab.fault_vocabulary import SERVICE_PROCESS
from lab.scenario import load_scenario
from provision import api_cluster, keystone, ocf_agents, uwsgi_api
from provision.secrets import load_or_create

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
APIS = api_cluster.UWSGI_APIS
BIND = {  # what the guide's ch. 4 binds to the VIP, per API
    "cinder-api": "osapi_volume_listen = {vip}\nosapi_volume_listen_port = {port}\n",
    "neutron-api": "bind_host = {vip}\nbind_port = {port}\n",
}
FAULT = {"cinder-api": "cinder", "neutron-api": "neutron"}  # lab/fault_vocabulary.py's names


def ids(entry: tuple) -> str:  # type: ignore[type-arg]
    return str(entry[1])


@pytest.mark.parametrize("entry", APIS, ids=ids)
def test_settings_bind_the_api_vip_and_use_ch3s_vips_and_the_labs_secrets(entry: tuple, tmp_path: Path) -> None:  # type: ignore[type-arg]
    api, primitive, settings = entry
    sc = load_scenario(str(REPO / "scenarios/api-cluster.yaml"))
    assert uwsgi_api.enabled(api, sc)
    ctx = SimpleNamespace(scenario=sc, secrets=load_or_create(tmp_path), provider=SimpleNamespace(emulated=False))
    conf = settings(ctx)
    vip, port = sc.vip_for(api.service).address, sc.services[api.service].port
    assert BIND[api.service].format(vip=vip, port=port) in conf
    db_password, service_password = uwsgi_api.passwords(api, ctx)  # type: ignore[arg-type]
    mysql = f"{sc.vip_for('mysql').address}:{sc.services['mysql'].port}"
    assert f"connection = mysql+pymysql://{api.name}:{db_password}@{mysql}/{api.name}\n" in conf
    rabbit = f"{sc.vip_for('rabbitmq').address}:{sc.services['rabbitmq'].port}"
    assert f"transport_url = rabbit://halab:{ctx.secrets.rabbitmq_password}@{rabbit}/\n" in conf
    assert f"auth_url = {keystone.auth_url(sc)}\n" in conf and f"password = {service_password}\n" in conf
    params = ocf_agents.uwsgi_params(ctx, api, primitive.removeprefix("p_"))  # type: ignore[arg-type]
    assert params["listen"] == f"{vip}:{port}" and params["url"] == f"http://{vip}:{port}/"
    assert Path(params["binary"]).name == SERVICE_PROCESS[FAULT[api.service]] != SERVICE_PROCESS["keystone"]
    secrets = (ctx.secrets.keystone_admin_password, db_password, service_password)
    assert not any(s in v for v in params.values() for s in secrets), "a password in the CIB"


def test_the_apis_processes_directories_and_endpoints_are_their_own() -> None:
    sc = load_scenario(str(REPO / "scenarios/api-cluster.yaml"))
    assert len({a.process for a, *_ in APIS} | {SERVICE_PROCESS["keystone"]}) == len(APIS) + 1
    assert len({a.dir for a, *_ in APIS}) == len(APIS)
    vip = sc.vip_for("cinder-api").address
    assert [uwsgi_api.endpoint(a, sc) for a, *_ in APIS] == [
        f"http://{vip}:8776/v3/%(project_id)s", f"http://{vip}:9696/"
    ]  # fmt: skip


@pytest.mark.parametrize("entry", APIS, ids=ids)
def test_ch9s_controllers_keep_the_stand_in_on_the_apis_port(entry: tuple) -> None:  # type: ignore[type-arg]
    """In the active/active topology these services are in no group: the stand-in serves their ports (README)."""
    assert not uwsgi_api.enabled(entry[0], load_scenario(str(REPO / "scenarios/active-active.yaml")))


@pytest.mark.parametrize("entry", APIS, ids=ids)
def test_registration_and_schema_take_their_passwords_on_stdin(entry: tuple, tmp_path: Path) -> None:  # type: ignore[type-arg]
    api = entry[0]
    sc = load_scenario(str(REPO / "scenarios/api-cluster.yaml"))
    calls: list[tuple[str, bytes]] = []
    provider = SimpleNamespace(put=lambda *a, **k: None, emulated=False,
                               run=lambda node, cmd, input=b"", **k: calls.append((cmd, input)))  # fmt: skip
    secrets = load_or_create(tmp_path)
    ctx = SimpleNamespace(scenario=sc, secrets=secrets, provider=provider)
    uwsgi_api.register(api, ctx, "api1")  # type: ignore[arg-type]
    uwsgi_api.create_schema(api, ctx, "api1", "node1")  # type: ignore[arg-type]
    db_password, service_password = uwsgi_api.passwords(api, ctx)  # type: ignore[arg-type]
    assert not any(p in cmd for cmd, _ in calls for p in (db_password, service_password))
    (register, stdin), create, schema = calls
    assert f" {api.catalog[1]} " in register
    assert stdin == f"{secrets.keystone_admin_password}\n{service_password}\n".encode()
    assert db_password.encode() in create[1] and f"--reuid={api.name}" in schema[0] and api.manage_args in schema[0]
