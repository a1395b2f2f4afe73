"""The active/active front end (guide ch. 8-9): haproxy.cfg, keepalived.conf, memcached and the API stand-in's
settings, rendered from scenarios/active-active.yaml without starting anything."""

from __future__ import annotations

import dataclasses
import py_compile
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lab.scenario import Scenario, load_scenario
from provision import api, glance, haproxy, keepalived, keystone, memcached
from provision.context import Context
from provision.secrets import Secrets

pytestmark = pytest.mark.unit

SECRETS = Secrets("db-secret", "mq-secret", "COOKIE", "00" * 128)
IFACES = {"mgmt": "mgmt"}


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return load_scenario("active-active")


def ctx_for(scenario: Scenario, profile: str = "guide", **cluster: object) -> Context:
    if cluster:
        scenario = dataclasses.replace(scenario, cluster=dataclasses.replace(scenario.cluster, **cluster))
    return Context(scenario, profile, None, SECRETS)  # type: ignore[arg-type]  # rendering needs no provider


def blocks(cfg: str) -> dict[str, list[str]]:
    """haproxy.cfg section header -> its stripped, non-comment lines."""
    found: dict[str, list[str]] = {}
    current = None
    for line in cfg.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith(" "):
            current = line.strip()
            found[current] = []
        elif current is not None:
            found[current].append(line.strip())
    return found


# ---------------------------------------------------------------- haproxy


def test_one_listen_block_per_service_with_the_guides_names(scenario: Scenario) -> None:
    b = blocks(haproxy.config(ctx_for(scenario)))
    listens = [k.split()[1] for k in b if k.startswith("listen ")]
    assert len(listens) == len(scenario.services)
    assert listens[0] == "galera_cluster"
    assert "keystone_public_internal_cluster" in listens and "swift_proxy_cluster" in listens


def test_every_block_binds_its_vip_and_port(scenario: Scenario) -> None:
    cfg = haproxy.config(ctx_for(scenario))
    for name, svc in scenario.services.items():
        lines = blocks(cfg)[f"listen {haproxy.listen_name(name)}"]
        assert f"bind {scenario.vip_for(name).address}:{svc.port}" in lines
        assert "balance source" in lines


def test_galera_one_active_two_backups_checked_on_9200(scenario: Scenario) -> None:
    lines = blocks(haproxy.config(ctx_for(scenario)))["listen galera_cluster"]
    assert "option httpchk" in lines
    assert not {"option tcpka", "option tcplog"} & set(lines)  # as the guide's galera block
    assert [ln for ln in lines if ln.startswith("server")] == [
        "server controller1 10.0.0.1:3306 check port 9200 inter 2000 rise 2 fall 5",
        "server controller2 10.0.0.2:3306 backup check port 9200 inter 2000 rise 2 fall 5",
        "server controller3 10.0.0.3:3306 backup check port 9200 inter 2000 rise 2 fall 5",
    ]


def test_api_blocks_as_the_guide(scenario: Scenario) -> None:
    b = blocks(haproxy.config(ctx_for(scenario)))
    keystone = b["listen keystone_public_internal_cluster"]
    assert {"option tcpka", "option httpchk", "option tcplog"} <= set(keystone)
    assert "server controller2 10.0.0.2:5000 check inter 2000 rise 2 fall 5" in keystone
    assert not any("backup" in ln for ln in keystone)
    # The guide checks these with a plain TCP connect.
    for name in ("glance_registry_cluster", "nova_metadata_api_cluster", "spice_cluster", "swift_proxy_cluster"):
        assert "option httpchk" not in b[f"listen {name}"]
        assert "option tcpka" in b[f"listen {name}"]


def test_check_timers_follow_the_options(scenario: Scenario) -> None:
    cfg = haproxy.config(ctx_for(scenario, haproxy_inter_ms=500, haproxy_rise=3, haproxy_fall=4))
    servers = [ln for ln in cfg.splitlines() if ln.strip().startswith("server ")]
    assert servers and all(ln.endswith("inter 500 rise 3 fall 4") for ln in servers)
    assert "inter 2000" not in cfg


def test_global_and_defaults_translated_for_a_lab_node(scenario: Scenario) -> None:
    b = blocks(haproxy.config(ctx_for(scenario)))
    g = b["global"]
    assert "daemon" not in g  # foreground under start_daemon
    assert "pidfile /run/haproxy/haproxy.pid" in g
    assert f"stats socket {haproxy.ADMIN_SOCKET} mode 660 level admin" in g
    assert {"chroot /var/lib/haproxy", "user haproxy", "group haproxy", "maxconn 4000"} <= set(g)
    d = b["defaults"]
    for line in (
        "option redispatch",
        "retries 3",
        "timeout http-request 10s",
        "timeout queue 1m",
        "timeout connect 10s",
        "timeout client 1m",
        "timeout server 1m",
        "timeout check 10s",
    ):
        assert line in d


def test_the_silent_down_bound_knows_the_templates_connect_timeout(scenario: Scenario) -> None:
    cfg = (Path(haproxy.__file__).parent / "templates" / "haproxy.cfg.j2").read_text()
    assert f"timeout connect {haproxy.CONNECT_TIMEOUT_MS // 1000}s\n" in cfg
    assert f"timeout server {haproxy.SERVER_TIMEOUT_MS // 60000}m\n" in cfg
    o = scenario.options("guide")
    per_check = o.haproxy_inter_ms + min(o.haproxy_inter_ms, haproxy.CONNECT_TIMEOUT_MS)
    assert haproxy.silent_down_ms(o) == o.haproxy_fall * per_check + o.haproxy_inter_ms


def test_sessions_stall_only_on_galeras_active_server_unless_haproxy_drops_them(scenario: Scenario) -> None:
    controllers = [n.name for n in scenario.nodes_with_role("galera")]
    guide = scenario.options("guide")
    assert not guide.haproxy_shutdown_sessions
    assert haproxy.stalled_sessions_ms(scenario, guide, controllers[0]) == haproxy.SERVER_TIMEOUT_MS  # not `backup`
    assert [haproxy.stalled_sessions_ms(scenario, guide, n) for n in controllers[1:]] == [0] * (len(controllers) - 1)
    hardened = dataclasses.replace(guide, haproxy_shutdown_sessions=True)
    assert haproxy.stalled_sessions_ms(scenario, hardened, controllers[0]) == 0
    lines = haproxy.config(ctx_for(scenario, "hardened")).splitlines()
    servers = [ln for ln in lines if ln.strip().startswith("server")]
    drops = [ln for ln in servers if ln.endswith(" on-marked-down shutdown-sessions")]
    hardened_drops = scenario.options("hardened").haproxy_shutdown_sessions
    assert len(drops) == (len(servers) if hardened_drops else 0)
    assert not [ln for ln in haproxy.config(ctx_for(scenario)).splitlines() if "shutdown-sessions" in ln]


def test_backend_roles() -> None:
    assert haproxy.backend_role("galera") == "galera"
    assert haproxy.backend_role("keystone-admin") == "api"
    assert haproxy.listen_name("heat-api") == "heat_api_cluster"


def test_parse_stat_keeps_servers_only() -> None:
    text = (
        "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,\n"
        "galera_cluster,FRONTEND,,,0,0,4000,0,0,0,0,0,0,,,,,OPEN,\n"
        "galera_cluster,controller1,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,\n"
        "galera_cluster,controller2,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,\n"
        "galera_cluster,BACKEND,0,0,0,0,400,0,0,0,0,0,,0,0,0,0,UP,\n"
        "spice_cluster,controller3,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP 1/5,\n"
        "\n"
    )
    assert haproxy.parse_stat(text) == {
        ("galera_cluster", "controller1"): "UP",
        ("galera_cluster", "controller2"): "DOWN",
        ("spice_cluster", "controller3"): "UP 1/5",
    }


def test_sessions_per_server_of_one_listen() -> None:
    text = (
        "# pxname,svname,qcur,qmax,scur,smax,slim,stot,status,\n"
        "glance_api_cluster,FRONTEND,,,0,0,4000,57,OPEN,\n"
        "glance_api_cluster,controller1,0,0,0,0,,0,UP,\n"
        "glance_api_cluster,controller2,0,0,1,1,,57,UP,\n"
        "glance_api_cluster,BACKEND,0,0,1,1,400,57,UP,\n"
        "galera_cluster,controller1,0,0,0,0,,9,UP,\n"
    )
    assert haproxy.sessions(text, "glance_api_cluster") == {"controller1": 0, "controller2": 57}


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")
@pytest.mark.parametrize("profile", ["guide", "hardened"])
def test_haproxy_accepts_the_config(scenario: Scenario, tmp_path: Path, profile: str) -> None:
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(haproxy.config(ctx_for(scenario, profile)))
    p = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "WARNING" not in p.stdout + p.stderr


# ---------------------------------------------------------------- keepalived


def instance(conf: str) -> str:
    return conf[conf.index("vrrp_instance VI_1") :]


def test_guide_profile_master_backup_with_preemption(scenario: Scenario) -> None:
    ctx = ctx_for(scenario, "guide")
    one, two = keepalived.config(ctx, "haproxy1", IFACES), keepalived.config(ctx, "haproxy2", IFACES)
    assert "state MASTER" in instance(one) and "priority 150" in instance(one)
    assert "state BACKUP" in instance(two) and "priority 140" in instance(two)
    for conf in (one, two):
        i = instance(conf)
        assert "interface mgmt" in i and "virtual_router_id 51" in i and "advert_int 1" in i
        assert "10.0.0.10/24 dev mgmt" in i
        assert "track_script {\n    chk_haproxy\n  }" in i
        assert "nopreempt" not in conf and "unicast" not in conf


def test_a_failed_check_drops_the_master_below_the_backup(scenario: Scenario) -> None:
    ctx = ctx_for(scenario, "guide")
    conf = keepalived.config(ctx, "haproxy1", IFACES)
    weight = int(re.search(r"weight (-?\d+)", conf).group(1))  # type: ignore[union-attr]
    assert keepalived.priority(scenario, "haproxy1") + weight < keepalived.priority(scenario, "haproxy2")
    assert 'script "/usr/bin/killall -0 haproxy"' in conf
    assert "interval 1" in conf and "fall 2" in conf


def test_check_interval_and_fall_follow_the_options(scenario: Scenario) -> None:
    conf = keepalived.config(
        ctx_for(scenario, chk_haproxy_interval_s=3, chk_haproxy_fall=4, vrrp_advert_int_s=2), "haproxy2", IFACES
    )
    assert "interval 3" in conf and "fall 4" in conf and "advert_int 2" in conf


def test_hardened_profile_nopreempt_unicast_and_fault_on_check(scenario: Scenario) -> None:
    ctx = ctx_for(scenario, "hardened")
    one, two = keepalived.config(ctx, "haproxy1", IFACES), keepalived.config(ctx, "haproxy2", IFACES)
    for conf in (one, two):
        assert "state BACKUP" in instance(conf) and "nopreempt" in instance(conf)
        assert "weight 0" in conf  # with nopreempt only FAULT gives the VIP up
    assert "unicast_src_ip 10.0.0.11" in one and "unicast_peer {\n    10.0.0.12\n  }" in one
    assert "unicast_src_ip 10.0.0.12" in two and "unicast_peer {\n    10.0.0.11\n  }" in two


def test_interface_comes_from_the_mapping(scenario: Scenario) -> None:
    conf = keepalived.config(ctx_for(scenario), "haproxy1", {"mgmt": "eth1"})
    assert "interface eth1" in conf and "10.0.0.10/24 dev eth1" in conf and "mgmt" not in instance(conf)


def a_real_interface() -> str | None:
    """keepalived -t wants an existing, non-loopback interface."""
    names = sorted(p.name for p in Path("/sys/class/net").glob("*") if p.name != "lo")
    return names[0] if names else None


@pytest.mark.skipif(shutil.which("keepalived") is None, reason="keepalived is not installed")
@pytest.mark.skipif(a_real_interface() is None, reason="no network interface besides lo")
@pytest.mark.parametrize("profile", ["guide", "hardened"])
def test_keepalived_accepts_the_config(scenario: Scenario, tmp_path: Path, profile: str) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(keepalived.config(ctx_for(scenario, profile), "haproxy1", {"mgmt": a_real_interface()}))
    p = subprocess.run(["keepalived", "-t", "-f", str(conf)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr


def test_vrrp_bounds(scenario: Scenario) -> None:
    b = keepalived.vrrp_bounds_ms(scenario.options("guide"))
    assert b["skew_ms"] == pytest.approx(453.125)  # (256 - 140) / 256 s
    assert b["master_down_ms"] == pytest.approx(3453.125)
    assert b["silent_floor_ms"] == pytest.approx(2453.125)
    assert b["released_ms"] == pytest.approx(453.125)
    assert b["chk_haproxy_ms"] == pytest.approx(2000 + 3453.125)
    assert b["chk_haproxy_floor_ms"] == pytest.approx(1000 + 2453.125)
    h = keepalived.vrrp_bounds_ms(scenario.options("hardened"))
    assert h["chk_haproxy_ms"] == pytest.approx(2000 + 453.125)  # FAULT: a priority-0 advert
    assert keepalived.vrrp_bounds_ms(scenario.options("guide"), priority=100)["skew_ms"] == pytest.approx(609.375)


# ---------------------------------------------------------------- memcached


def test_memcached(scenario: Scenario) -> None:
    assert memcached.client_servers(scenario) == ["10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"]
    assert memcached.command(scenario, "controller2") == (
        "/usr/bin/memcached -u memcache -l 10.0.0.2 -p 11211 -U 0 -m 16"
    )


# ---------------------------------------------------------------- API stand-in


def test_api_settings(scenario: Scenario) -> None:
    s = api.settings(ctx_for(scenario), "controller2")
    assert s["listen"] == "10.0.0.2"
    # Keystone's two ports are served by Keystone itself (provision/keystone.py), Glance's by Glance
    # (provision/glance.py), the other eight by the stand-in
    assert "galera" not in s["ports"] and s["ports"]["glance-registry"] == 9191 and len(s["ports"]) == 8
    assert not set(keystone.SERVICES + glance.SERVICES) & set(s["ports"])
    assert (s["db"]["host"], s["db"]["port"], s["db"]["user"]) == ("10.0.0.10", 3306, "halab")
    assert s["db"]["password"] == "db-secret" and s["amqp"]["password"] == "mq-secret"
    assert s["amqp"]["hosts"] == ["10.0.0.2", "10.0.0.1", "10.0.0.3"]  # the local broker first
    assert s["amqp"]["queue_type"] == "classic"
    assert api.settings(ctx_for(scenario, "hardened"), "controller1")["amqp"]["queue_type"] == "quorum"


def test_api_standin_compiles_and_runs_unprivileged(tmp_path: Path) -> None:
    py_compile.compile(str(api.PROGRAM_SOURCE), cfile=str(tmp_path / "standin.pyc"), doraise=True)
    assert api.command().startswith("setpriv --reuid=nobody")
    assert api.command().endswith(f"/usr/bin/python3 {api.PROGRAM} {api.CONFIG}")
