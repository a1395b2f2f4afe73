"""What the OpenStack tests do on the lab's nodes: the stock `openstack` CLI on the client node, which controller
HAProxy sends the client to, and the lab's OCF agents run by hand (ocf-tester, single actions)."""

from __future__ import annotations

import shlex

from lab.providers.base import Result
from lab.session import Lab, Trial, TrialResult
from lab.wait import until
from lab.workload import identity
from provision import glance, haproxy, keystone, ocf_agents, pacemaker, rabbitmq_cluster
from provision.active_active import IMAGES, TOKENS, VALIDATE


def openstack(lab: Lab, args: str) -> str:
    """The stock `openstack` CLI on the client node, as the admin, through the VIP (the password on stdin)."""
    sc = lab.scenario
    env = (
        f"OS_AUTH_URL={keystone.auth_url(sc)} OS_USERNAME={keystone.ADMIN} OS_PROJECT_NAME={keystone.PROJECT} "
        f"OS_USER_DOMAIN_NAME={keystone.DOMAIN} OS_PROJECT_DOMAIN_NAME={keystone.DOMAIN} OS_IDENTITY_API_VERSION=3"
    )
    pw = (lab.ctx.secrets.keystone_admin_password + "\n").encode()
    # several requests each (discovery, a token, the call): under TCG one GET of /v3 through the VIP took 14-21 s
    r = lab.provider.run(lab.client, f"read -r OS_PASSWORD && export OS_PASSWORD {env} && openstack {args}",
                         input=pw, timeout=60 * pacemaker.timeout_scale(lab.ctx))  # fmt: skip
    assert r.ok, f"openstack {args} on {lab.client}: exit {r.rc}: {r.stderr[-500:]}"
    return r.stdout.strip()


def serving(lab: Lab, front: str, service: str) -> str:
    """The controller HAProxy on `front` sends the client's `service` requests to now (`balance source`: one server
    per client address): the one whose session count grows while the workload runs (not the most sessions ever
    taken: an earlier trial may have sent the client elsewhere)."""
    listen = haproxy.listen_name(service)
    before = haproxy.sessions(haproxy.show_stat(lab.ctx, front), listen)
    grown: dict[str, int] = {}

    def some_grew() -> bool:
        now = haproxy.sessions(haproxy.show_stat(lab.ctx, front), listen)
        grown.update({server: taken - before.get(server, 0) for server, taken in now.items()})
        return max(grown.values(), default=0) >= SESSIONS_SEEN

    until(some_grew, timeout=lab.playbook.recovery_deadline_s(lab.ctx), interval=0.2,
          what=f"{SESSIONS_SEEN} new sessions of the client's in {listen} on {front}", seen=lambda: grown)  # fmt: skip
    return max(grown, key=lambda server: grown[server])


SESSIONS_SEEN = 5  # the workload opens a connection per request: a few are enough to tell where they go


def real_services(lab: Lab) -> list[str]:
    """The scenario services real OpenStack daemons serve (Keystone's ports, then Glance's where it runs)."""
    return list(keystone.ports(lab.scenario)) + ([glance.SERVICE] if glance.enabled(lab.scenario) else [])


def crash_keeps_tokens_and_images(lab: Lab, t: Trial, node: str, front: str) -> TrialResult:
    """Crash controller `node` inside trial `t`; HAProxy on `front` marks its Keystone and Glance DOWN; the clients
    come back; the node is powered on; the trial ends with bounds for tokens, validations and images: HAProxy's
    silent-server detection, plus its `timeout server` where `node` was galera_cluster's active server and HAProxy
    keeps the sessions to it (haproxy.stalled_sessions_ms), plus for Keystone the requests abandoned meanwhile
    (identity.abandoned_backlog_ms)."""
    listens = {haproxy.listen_name(s) for s in real_services(lab)}
    # A crashed server sends no RST: each check waits out its connect timeout (haproxy.silent_down_ms); Keystone's
    # and Glance's pooled database connections to it hang until `timeout server` (measured here: 82 s, guide).
    db_stall = haproxy.stalled_sessions_ms(lab.scenario, lab.opts, node)
    bound = haproxy.silent_down_ms(lab.opts) + db_stall + t.resolution_ms
    t.fault("crash", node)
    until(
        lambda: all(haproxy.server_states(lab.ctx, front).get((li, node), "").startswith("DOWN") for li in listens),
        timeout=haproxy.silent_down_ms(lab.opts) / 1000,
        what=f"HAProxy on {front} to mark {node}'s {', '.join(real_services(lab))} DOWN",
        seen=lambda: haproxy.server_states(lab.ctx, front),
    )
    t.clients_back()
    t.heal("crash", node)
    # the API stand-in also publishes to RabbitMQ: a mirrored queue whose master was on the silent node takes
    # confirms again once Erlang declares it down (net_ticktime)
    api_bound = bound + rabbitmq_cluster.silent_departure_bound_ms()
    # once the stall ends, Keystone first works off the requests its clients gave up on during it (uwsgi's queue)
    keystone_bound = bound + identity.abandoned_backlog_ms(t.cfg, db_stall)
    return t.finish(bounds_ms={TOKENS: keystone_bound, VALIDATE: keystone_bound, IMAGES: bound, "api": api_bound})


def ocf_tester(lab: Lab, node: str, agent: str, params: dict[str, str], timeout: float) -> Result:
    """resource-agents' ocf-tester on `node` with the agent and its parameters (values in single quotes: ocf-tester
    quotes them so)."""
    opts = " ".join(f"-o {shlex.quote(f'{k}={v}')}" for k, v in params.items())
    return lab.provider.run(node, f"ocf-tester -n p_{agent} {opts} {ocf_agents.agent_path(agent)}", timeout=timeout)


def ocf_action(lab: Lab, node: str, agent: str, action: str, params: dict[str, str], timeout: float) -> Result:
    """One action of the agent, run as Pacemaker's executor would: OCF_ROOT, the instance, each OCF_RESKEY_."""
    env = " ".join(shlex.quote(f"OCF_RESKEY_{k}={v}") for k, v in params.items())
    cmd = f"env OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=p_{agent} {env} {ocf_agents.agent_path(agent)} {action}"
    return lab.provider.run(node, cmd, timeout=timeout)
