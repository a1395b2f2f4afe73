"""provision/ocf: the lab's OCF agents are valid shell, their meta-data conforms to resource-agents' ra-api-1.dtd
(xmllint, as ocf-tester checks it), unknown actions are OCF_ERR_UNIMPLEMENTED, a monitor with no process is
OCF_NOT_RUNNING, validate-all names what is missing; their parameters come from the scenario, and no secret is
one (the monitors read the password from a 0600 file)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from lab.scenario import Scenario, load_scenario
from provision import ceilometer, glance, keystone, ocf_agents, pacemaker
from provision.secrets import load_or_create

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
OCF_ROOT = Path("/usr/lib/ocf")
needs_resource_agents = pytest.mark.skipif(
    not (OCF_ROOT / "lib/heartbeat/ocf-shellfuncs").exists(), reason="resource-agents is not installed"
)


@pytest.fixture(params=["scenarios/active-active.yaml", "scenarios/variants/aa-variant.yaml"])
def scenario(request: pytest.FixtureRequest) -> Scenario:
    return load_scenario(str(REPO / request.param))


def agent(name: str) -> Path:
    return ocf_agents.SOURCE / "resource.d" / ocf_agents.PROVIDER / name


def run_agent(name: str, action: str, tmp_path: Path, **params: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "OCF_ROOT": str(OCF_ROOT), "OCF_RESOURCE_INSTANCE": f"p_{name}",
           "HA_RSCTMP": str(tmp_path)} | {f"OCF_RESKEY_{k}": v for k, v in params.items()}  # fmt: skip
    return subprocess.run([str(agent(name)), action], env=env, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("name", ocf_agents.AGENTS)
def test_agents_are_executable_shell(name: str) -> None:
    assert os.access(agent(name), os.X_OK)
    for script in (agent(name), ocf_agents.SOURCE / "lib" / ocf_agents.PROVIDER / "openstack.sh"):
        subprocess.run(["sh", "-n", str(script)], check=True)


@needs_resource_agents
@pytest.mark.skipif(shutil.which("xmllint") is None, reason="xmllint (libxml2-utils) is not installed")
@pytest.mark.parametrize("name", ocf_agents.AGENTS)
def test_meta_data_conforms_to_the_ra_api_dtd(name: str, tmp_path: Path) -> None:
    meta = run_agent(name, "meta-data", tmp_path)
    assert meta.returncode == 0, meta.stderr
    lint = subprocess.run(["xmllint", "--noout", "--valid", "-"], input=meta.stdout, capture_output=True, text=True,
                          cwd="/usr/share/resource-agents", timeout=30)  # fmt: skip
    assert lint.returncode == 0, lint.stderr
    for action in ("start", "stop", "monitor", "validate-all", "meta-data"):
        assert f'<action name="{action}"' in meta.stdout
    assert 'name="os_password"' not in meta.stdout  # never a password in the CIB
    assert ('name="os_password_file"' in meta.stdout) == (name in ocf_agents.API_AGENTS)


@needs_resource_agents
@pytest.mark.parametrize("name", ocf_agents.AGENTS)
def test_exit_codes_without_a_service(name: str, tmp_path: Path) -> None:
    assert run_agent(name, "frobnicate", tmp_path).returncode == 3  # OCF_ERR_UNIMPLEMENTED
    assert run_agent(name, "monitor", tmp_path).returncode == 7  # OCF_NOT_RUNNING: no pid file
    assert run_agent(name, "stop", tmp_path).returncode == 0  # stopping a stopped resource succeeds
    bad = run_agent(name, "validate-all", tmp_path, config=str(tmp_path / "missing.conf"), binary="/bin/true",
                    wsgi="/bin/true", listen="127.0.0.1:1", url="http://127.0.0.1:1/")  # fmt: skip
    assert bad.returncode in (5, 6), bad.stderr  # OCF_ERR_INSTALLED (no uwsgi here) or OCF_ERR_CONFIGURED
    assert "missing.conf" in bad.stderr or "uwsgi" in bad.stderr


def test_parameters_come_from_the_scenario_and_hold_no_secret(scenario: Scenario, tmp_path: Path) -> None:
    ctx = SimpleNamespace(scenario=scenario, secrets=load_or_create(tmp_path), provider=SimpleNamespace(emulated=False))
    node = keystone.nodes(scenario)[0]
    ks = ocf_agents.keystone_params(ctx, node)  # type: ignore[arg-type]
    addr = keystone.node_address(scenario, node)
    assert ks["listen"].split() == [f"{addr}:{p}" for p in keystone.ports(scenario).values()]
    assert ks["os_auth_url"] == keystone.node_url(scenario, node) and ks["config"] == keystone.CONF
    gl = ocf_agents.glance_params(ctx, node)  # type: ignore[arg-type]
    assert gl["url"] == glance.node_url(scenario, node) and gl["binary"] == glance.PROGRAM
    assert gl["os_auth_url"] == keystone.auth_url(scenario)  # through the VIP: not this node's Keystone
    assert ks["pid"] != gl["pid"]
    for params in (ks, gl):
        assert ctx.secrets.keystone_admin_password not in " ".join(params.values())
        assert params["os_password_file"] == ocf_agents.PASSWORD_FILE


def test_the_monitors_questions_wait_longer_on_an_emulated_cpu_and_still_fit_the_monitor(
    scenario: Scenario, tmp_path: Path
) -> None:
    """Native: no probe_timeout parameter (the agent's default, the one PROBE_TIMEOUT_S names). Emulated: scaled
    as Pacemaker's op timeouts, and a monitor's three questions at most stay within its scaled 30 s timeout."""
    lib = (ocf_agents.SOURCE / "lib" / ocf_agents.PROVIDER / "openstack.sh").read_text()
    assert f': "${{OCF_RESKEY_probe_timeout:={ocf_agents.PROBE_TIMEOUT_S}}}"' in lib
    node = keystone.nodes(scenario)[0]
    for emulated in (False, True):
        ctx = SimpleNamespace(scenario=scenario, secrets=load_or_create(tmp_path),
                              provider=SimpleNamespace(emulated=emulated))  # fmt: skip
        scale = pacemaker.timeout_scale(ctx)  # type: ignore[arg-type]
        for params in (ocf_agents.keystone_params(ctx, node), ocf_agents.glance_params(ctx, node),  # type: ignore[arg-type]
                       ocf_agents.cinder_params(ctx), ocf_agents.neutron_params(ctx)):  # type: ignore[arg-type]  # fmt: skip
            if not emulated:
                assert "probe_timeout" not in params
                continue
            assert int(params["probe_timeout"]) == ocf_agents.PROBE_TIMEOUT_S * scale > ocf_agents.PROBE_TIMEOUT_S
            assert 3 * int(params["probe_timeout"]) < 30 * scale  # a token, a list, the versions


def test_install_writes_the_password_file_0600(scenario: Scenario, tmp_path: Path) -> None:
    put: dict[str, int] = {}
    provider = SimpleNamespace(put=lambda node, path, text, mode=0o644, owner="root:root": put.__setitem__(path, mode),
                               run=lambda *a, **k: SimpleNamespace(ok=True))  # fmt: skip
    ctx = SimpleNamespace(scenario=scenario, secrets=load_or_create(tmp_path), provider=provider)
    ocf_agents.install(ctx, "controller1")  # type: ignore[arg-type]
    assert put[ocf_agents.PASSWORD_FILE] == 0o600
    assert all(put[ocf_agents.agent_path(a)] == 0o755 for a in ocf_agents.AGENTS)


LIB = ocf_agents.SOURCE / "lib" / ocf_agents.PROVIDER / "openstack.sh"


def lib_script(body: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`body` run by sh with the agents' library sourced (as an agent in resource.d/halab/ would)."""
    agent_dir = tmp_path / "resource.d" / "halab"
    agent_dir.mkdir(parents=True)
    (tmp_path / "lib").symlink_to(ocf_agents.SOURCE / "lib")
    script = agent_dir / "probe-agent"
    script.write_text(f'#!/bin/sh\n. "$(dirname "$0")/../../lib/halab/openstack.sh"\n{body}\n')
    script.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "OCF_ROOT": str(OCF_ROOT), "OCF_RESOURCE_INSTANCE": "p_probe",
           "HA_RSCTMP": str(tmp_path), "OCF_RESKEY_pid": str(tmp_path / "svc.pid"),
           "OCF_RESKEY_CRM_meta_timeout": "8000"}  # fmt: skip
    return subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=60)


@needs_resource_agents
def test_the_service_is_its_process_group_and_stop_ends_all_of_it(tmp_path: Path) -> None:
    """A group whose leader died but whose members run on (uwsgi's orphaned workers) still runs; stop ends every
    member; a pid file naming a process that runs something else is not the service."""
    marker = tmp_path / "svc-marker"  # a program whose path is in its command line, as the agents' are
    marker.write_text("#!/bin/sh\nsleep 300\n")
    marker.chmod(0o755)
    r = lib_script(
        f"""
        OS_MARKER={marker}
        setsid sh -c '{marker} & exec {marker}' &
        echo $! >"$OCF_RESKEY_pid"
        until os_pid_running; do sleep 0.1; done; echo running
        kill -KILL "$(cat "$OCF_RESKEY_pid")"; sleep 0.3
        os_pid_running && echo orphans-run
        os_stop; echo "stop $?"
        os_pid_running || echo stopped
        sleep 300 & echo $! >"$OCF_RESKEY_pid"
        os_pid_running || echo reused-is-not-ours
        kill $!
    """,
        tmp_path,
    )
    assert r.stdout.split() == ["running", "orphans-run", "stop", "0", "stopped", "reused-is-not-ours"], r


@needs_resource_agents
def test_a_service_still_on_its_way_to_setsid_is_starting_not_exited(tmp_path: Path) -> None:
    """start's check between looks: the launched process alive, before it is its own group (os_pid_running is not
    yet true there: a slow CPU once failed a start in that gap), and not alive once killed (a zombie included)."""
    marker = tmp_path / "svc-marker"
    marker.write_text("#!/bin/sh\nsleep 300\n")
    marker.chmod(0o755)
    r = lib_script(
        f"""
        OS_MARKER={marker}
        sh -c 'sleep 1; exec setsid {marker}' &
        echo $! >"$OCF_RESKEY_pid"
        os_pid_running || echo not-yet-its-group
        os_started_alive && echo alive
        until os_pid_running; do sleep 0.1; done; echo running
        kill -KILL -"$(cat "$OCF_RESKEY_pid")"; sleep 0.3
        os_started_alive || echo exited
    """,
        tmp_path,
    )
    assert r.stdout.split() == ["not-yet-its-group", "alive", "running", "exited"], r


@needs_resource_agents
def test_the_monitor_judges_an_answer_by_what_failed(tmp_path: Path) -> None:
    """The wanted answer passes; so, outside start, does a failed request (5xx, no response, Keystone refusing
    Glance's token) of a service whose version document answers 200 (the database moving under the APIs: a restart
    cures nothing); a hung service, a failing version document or a refusal fails (1); during start (OS_QUIET) only
    the wanted answer passes."""
    r = lib_script(
        """
        for a in 201 '503; versions 200' 'token 500; versions 200' 'token error timed out; versions 200' \
            'error Remote end closed connection without response; versions 200' \
            'error timed out; versions error timed out' '503; versions 503' '401; versions 200'; do
            os_judge "$a" 201 probe; echo "$a=$?"
        done
        OS_QUIET=1; os_judge '503; versions 200' 201 probe; echo "start 503=$?"
    """,
        tmp_path,
    )
    got = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    assert got == {
        "201": "0",
        "503; versions 200": "0",
        "token 500; versions 200": "0",
        "token error timed out; versions 200": "0",
        "error Remote end closed connection without response; versions 200": "0",
        "error timed out; versions error timed out": "1",
        "503; versions 503": "1",
        "401; versions 200": "1",
        "start 503": "1",
    }, r.stdout + r.stderr


@needs_resource_agents
@pytest.mark.parametrize("name", ocf_agents.AGENTS)
def test_each_parameters_default_in_effect_is_the_one_its_meta_data_declares(name: str, tmp_path: Path) -> None:
    """The agent's text with its dispatcher replaced by a dump of its OCF_RESKEY_ values: no parameter's default is
    shadowed by the library's (a uwsgi default of `binary` once became Glance's, `threads` 2 Keystone's)."""
    import re

    meta = run_agent(name, "meta-data", tmp_path).stdout
    declared = {}  # the parameters with a literal default (not one naming ${HA_RSCTMP} and the like)
    for param, body in re.findall(r'<parameter name="(\w+)"(.*?)</parameter>', meta, re.S):
        found = re.search(r'default="([^"]*)"', body)
        if found and "$" not in found[1]:
            declared[param] = found[1]
    text = agent(name).read_text().replace("\nos_main meta_data", '\nset | grep "^OCF_RESKEY_"')
    agent_dir = tmp_path / "resource.d" / "halab"
    agent_dir.mkdir(parents=True)
    (tmp_path / "lib").symlink_to(ocf_agents.SOURCE / "lib")
    (agent_dir / name).write_text(text)
    env = {"PATH": os.environ["PATH"], "OCF_ROOT": str(OCF_ROOT), "OCF_RESOURCE_INSTANCE": f"p_{name}",
           "HA_RSCTMP": str(tmp_path)}  # fmt: skip
    dumped = subprocess.run(["sh", str(agent_dir / name)], env=env, capture_output=True, text=True, timeout=30)
    # dash's `set`: NAME='value'
    effective = {k: v.strip("'") for k, v in (ln.removeprefix("OCF_RESKEY_").split("=", 1)
                                              for ln in dumped.stdout.splitlines())}  # fmt: skip
    assert declared and all(effective.get(k) == v for k, v in declared.items() if k in effective), (declared, effective)
    assert {"config"} <= declared.keys() & effective.keys()


@needs_resource_agents
def test_the_central_agents_monitor_wants_its_master_and_a_worker_neither_stopped(tmp_path: Path) -> None:
    """ocf:halab:ceilometer-agent-central against a stand-in program that forks as cotyledon does (a master and one
    polling worker): start waits for the worker, monitor passes; frozen (SIGSTOP) it fails and says why; thawed it
    passes; with the worker gone (the master alone polls nothing) it fails; stop ends the group, monitor then 7."""
    program = tmp_path / "bin" / "ceilometer-polling"  # the launcher's name: the agent finds its processes by it
    program.parent.mkdir()
    # the worker is the program again (its name in its command line, as cotyledon's title puts it); this master
    # outlives it without forking another (cotyledon would: a worker that will not stay up)
    program.write_text('#!/bin/sh\n[ "$1" = worker ] || "$0" worker &\nwhile :; do sleep 1; done\n')
    program.chmod(0o755)
    conf = tmp_path / "ceilometer.conf"
    conf.write_text("[DEFAULT]\n")
    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    group = subprocess.run(["id", "-gn"], capture_output=True, text=True, check=True).stdout.strip()
    params = {"binary": str(program), "config": str(conf), "pid": str(tmp_path / "agent.pid"), "user": user,
              "group": group, "log": str(tmp_path / "agent.log"), "CRM_meta_timeout": "10000",
              "CRM_meta_interval": "30000"}  # fmt: skip
    name = ceilometer.AGENT

    def act(action: str) -> subprocess.CompletedProcess[str]:
        return run_agent(name, action, tmp_path, **params)

    def worker() -> str:  # the stand-in's master's child
        pid = (tmp_path / "agent.pid").read_text().strip()
        return subprocess.run(["pgrep", "-P", pid], capture_output=True, text=True).stdout.split()[0]

    assert act("validate-all").returncode == 0
    try:
        assert act("start").returncode == 0
        assert act("monitor").returncode == 0
        pgid = (tmp_path / "agent.pid").read_text().strip()
        os.killpg(int(pgid), 19)  # SIGSTOP
        frozen = act("monitor")
        os.killpg(int(pgid), 18)  # SIGCONT
        assert frozen.returncode == 1 and "stopped" in frozen.stderr, frozen.stderr
        assert act("monitor").returncode == 0
        os.kill(int(worker()), 9)
        alone = act("monitor")
        assert alone.returncode == 1 and "no polling worker" in alone.stderr, alone.stderr
    finally:
        assert act("stop").returncode == 0
    assert act("monitor").returncode == 7
