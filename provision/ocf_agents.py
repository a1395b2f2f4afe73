"""The lab's own OCF agents for OpenStack services (provision/ocf/: resource.d/halab/<agent> and the library they
share in lib/halab/), installed on a node under an OCF root of the lab's, and the parameters a resource (or
ocf-tester) gives them for this lab's Keystone and Glance.

Why not the guide's ocf:openstack:* agents: they are not packaged, and their archived upstream copies start
`keystone-all` and monitor with the v2 `keystone user-list`, neither of which exists in Zed."""

from __future__ import annotations

from pathlib import Path

from provision import ceilometer, cinder, glance, keystone, neutron, pacemaker, uwsgi_api
from provision.context import Context

SOURCE = Path(__file__).resolve().parent / "ocf"
PROBE = Path(__file__).resolve().parent / "files" / "os_probe.py"  # the monitors' API questions
API_AGENTS = ("keystone", "glance-api", "cinder-api", "neutron-server")  # their monitors ask the service's API
AGENTS = (*API_AGENTS, ceilometer.AGENT)
PROVIDER = "halab"
# Pacemaker's OCF root, where it finds ocf:halab:* (2.1 reads no other): each node's own, an overlay on netns
# (lab/providers/netns_boot.py)
ROOT = "/usr/lib/ocf"
PASSWORD_FILE = "/var/lib/halab/ocf/os-password"  # the monitors' admin password: a file, so never in the CIB


def agent_path(agent: str, root: str = ROOT) -> str:
    return f"{root}/resource.d/{PROVIDER}/{agent}"


def pid_file(agent: str) -> str:
    """The pid file the lab gives the agent's resource (a parameter: the agent's own default is under ${HA_RSCTMP})."""
    return f"/run/halab/{agent}.pid"


def install(ctx: Context, node: str, root: str = ROOT) -> None:
    """The agents, their library, the probe and the monitors' password file (0600) on `node`; every directory
    755 (ocf-tester runs meta-data as nobody)."""
    p = ctx.provider
    for agent in AGENTS:
        p.put(node, agent_path(agent, root), (SOURCE / "resource.d" / PROVIDER / agent).read_text(), mode=0o755)
    lib = f"{root}/lib/{PROVIDER}"
    p.put(node, f"{lib}/openstack.sh", (SOURCE / "lib" / PROVIDER / "openstack.sh").read_text(), mode=0o644)
    p.put(node, f"{lib}/os_probe.py", PROBE.read_text(), mode=0o644)
    p.put(node, PASSWORD_FILE, ctx.secrets.keystone_admin_password + "\n", mode=0o600)
    p.run(node, f"chmod 755 {root} {root}/resource.d {root}/resource.d/{PROVIDER} {root}/lib {lib}", check=True)


PROBE_TIMEOUT_S = 5  # the agents' own default (lib/halab/openstack.sh): each API question of a monitor


def _common_params(ctx: Context, agent: str, auth_url: str) -> dict[str, str]:
    return {
        "pid": pid_file(agent),
        "os_auth_url": auth_url,
        "os_username": keystone.ADMIN,
        "os_project_name": keystone.PROJECT,
        "os_domain_name": keystone.DOMAIN,
        "os_password_file": PASSWORD_FILE,
        **probe_timeout(ctx),
    }


def probe_timeout(ctx: Context) -> dict[str, str]:
    """On an emulated CPU the monitors' questions wait as many times longer as Pacemaker's op timeouts are scaled
    (a monitor's three at most, a token, a list, the versions, still fit its timeout): under TCG a GET of Keystone's
    /v3 through the API VIP took 14-21 s, and p_neutron-server's monitor failed on its 5 s and restarted it (for
    6 min). Else the agents' default."""
    scale = pacemaker.timeout_scale(ctx)
    return {} if scale == 1 else {"probe_timeout": str(PROBE_TIMEOUT_S * scale)}


def keystone_params(ctx: Context, node: str) -> dict[str, str]:
    """p_keystone's parameters to serve Keystone on `node`'s own address (the AA controllers' layout)."""
    listen = " ".join(
        f"{keystone.node_address(ctx.scenario, node)}:{port}" for port in keystone.ports(ctx.scenario).values()
    )
    return {
        "config": keystone.CONF,
        "listen": listen,
        "user": keystone.USER.split(":")[0],
        "group": keystone.USER.split(":")[1],
        "processes": str(keystone.PROCESSES),
        "threads": str(keystone.THREADS),
        "log": keystone.LOG,
        **_common_params(ctx, "keystone", keystone.node_url(ctx.scenario, node)),  # its own Keystone answers
    }


def glance_params(ctx: Context, node: str) -> dict[str, str]:
    """p_glance-api's parameters for Glance on `node` (its configuration binds the node's own address)."""
    return {
        "config": glance.CONF,
        "binary": glance.PROGRAM,
        "url": glance.node_url(ctx.scenario, node),
        "user": glance.USER.split(":")[0],
        "group": glance.USER.split(":")[1],
        "log": glance.LOG,
        # its token from Keystone through the VIP: this node's own Keystone failing is not Glance failing
        **_common_params(ctx, "glance-api", keystone.auth_url(ctx.scenario)),
    }


def uwsgi_params(ctx: Context, api: uwsgi_api.UwsgiApi, agent: str) -> dict[str, str]:
    """The parameters of an API under uwsgi (ocf:halab:<agent>): under the service's own name, on the API VIP."""
    return uwsgi_api.agent_params(api, ctx) | _common_params(ctx, agent, keystone.auth_url(ctx.scenario))


def cinder_params(ctx: Context) -> dict[str, str]:
    """p_cinder-api's (the guide's osapi_volume_listen is the agent's listen)."""
    return uwsgi_params(ctx, cinder.API, "cinder-api")


def neutron_params(ctx: Context) -> dict[str, str]:
    """p_neutron-server's (the guide's bind_host is the agent's listen)."""
    return uwsgi_params(ctx, neutron.API, "neutron-server")


def ceilometer_params() -> dict[str, str]:
    """p_ceilometer-agent-central's: the guide's config, the lab's program, user and log, the lab's pid file (it asks
    no API: no Keystone parameters)."""
    return ceilometer.agent_params() | {"pid": pid_file(ceilometer.AGENT)}
