"""Role ceilometer: guide ch. 4's `p_ceilometer-agent-central` for real: Debian's Ceilometer (Zed, python3-ceilometer)
polling agent in the central namespace (what Debian's ceilometer-agent-central runs: `ceilometer-polling
--polling-namespaces central`), last in g_services_api, active/passive as the guide has it (one central agent polls
every resource: two would count each twice without a coordination backend). It authenticates against Keystone at
the API VIP as its own service user, polls the lab's APIs (Glance's image sizes, Cinder's volume sizes) through the
catalog, and publishes each sample as a notification to ch. 3's RabbitMQ VIP, where it waits in the queue
`notifications.sample` (oslo.messaging declares it with the first sample, so nothing is lost before a consumer
comes: no notification agent or Gnocchi runs in the lab). Zed's Ceilometer has no database and no API: the guide's
`[database] sql_connection` is gone (README, "Translations").

Not Debian's ceilometer-agent-central package: its ceilometer-common wants debconf questions answered and starts
the agent with an init script; the lab starts the agent from its own OCF agent, under Pacemaker."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lab.scenario import Scenario
from provision import keystone, uwsgi_api
from provision.context import Context, script_command

AGENT = "ceilometer-agent-central"  # the OCF agent's name (guide: ocf:openstack:ceilometer-agent-central)
PRIMITIVE = f"p_{AGENT}"
FILES = Path(__file__).resolve().parent / "files"
DIR = "/var/lib/halab/ceilometer"  # private to each node on netns (provision/api.py says why)
CONF, POLLING, PROGRAM = f"{DIR}/ceilometer.conf", f"{DIR}/polling.yaml", f"{DIR}/ceilometer-polling"
LOG = "/var/log/halab/ceilometer-agent-central.log"
USER = "ceilometer:ceilometer"  # its own system user (provision/keystone.py says why)
SERVICE_USER = "ceilometer"
# What `pkill -x` finds: the kernel keeps 15 characters of a process name (the launcher's, ceilometer-polling; the
# titles cotyledon gives the master and its worker begin with it)
PROCESS = "ceilometer-polling"[:15]
# The meters it polls: what the lab's APIs serve (central pollsters for Swift, RadosGW, switches, FWaaS, VPNaaS and
# floating IPs have nothing to ask here). Ceilometer's default interval is 300 s; the lab's is short enough that a
# test sees the agent poll again on the peer within its failover bound.
METERS = ("image.size", "volume.size")
POLL_INTERVAL_S = 10
QUEUE = "notifications.sample"  # oslo.messaging's: topic `notifications`, priority `sample`, exchange `ceilometer`


def enabled(scenario: Scenario) -> bool:
    """Ch. 4's API group under Pacemaker, with Keystone to authenticate against and ch. 3's RabbitMQ to publish to:
    the guide's group ends with the central agent."""
    return keystone.enabled(scenario) and keystone.under_pacemaker(scenario) and "rabbitmq" in scenario.services


def settings(ctx: Context) -> str:
    """ceilometer.conf (carries the broker's and its Keystone user's passwords and the samples' secret: 0600)."""
    sc = ctx.scenario
    return "\n".join(
        [
            "[DEFAULT]",
            f"transport_url = {uwsgi_api.transport_url(ctx)}",  # guide: notifier_strategy = rabbit, rabbit_host
            "[polling]",
            f"cfg_file = {POLLING}",
            "[publisher]",
            f"telemetry_secret = {ctx.secrets.ceilometer_telemetry_secret}",
            "[service_credentials]",  # guide: os_auth_url at the API VIP (v2.0 then; v3 in Zed)
            "auth_type = password",
            f"auth_url = {keystone.auth_url(sc)}",
            f"project_domain_name = {keystone.DOMAIN}",
            f"user_domain_name = {keystone.DOMAIN}",
            "project_name = service",
            f"username = {SERVICE_USER}",
            f"password = {ctx.secrets.ceilometer_service_password}",
            f"region_name = {keystone.REGION}",
            "interface = public",
            "[oslo_concurrency]",
            f"lock_path = {DIR}/lock",
            "",
        ]
    )


def polling(interval_s: int = POLL_INTERVAL_S) -> str:
    """polling.yaml: one source, the lab's meters, every `interval_s` seconds (JSON is YAML)."""
    return json.dumps({"sources": [{"name": "halab_central", "interval": interval_s, "meters": list(METERS)}]}) + "\n"


def configure_node(ctx: Context, node: str) -> None:
    p = ctx.provider
    keystone.require_user(ctx, node, USER.split(":")[0])
    p.run(node, f"mkdir -p {DIR}/lock /var/log/halab && chmod 755 /var/lib/halab", check=True, timeout=15)
    p.put(node, CONF, settings(ctx), mode=0o600, owner=USER)
    p.put(node, POLLING, polling(), mode=0o644)
    p.put(node, PROGRAM, (FILES / "ceilometer-polling").read_text(), mode=0o755)
    p.run(node, f"chown -R {USER} {DIR} && chmod 700 {DIR}", check=True, timeout=15)


def register(ctx: Context, node: str) -> None:
    """Its service user in Keystone (admin in the `service` project, as the install guide makes it): no service or
    endpoint, Zed's Ceilometer has no API."""
    keystone.register_service(ctx, node, DIR, ("ceilometer", "metering", ""), SERVICE_USER,
                              ctx.secrets.ceilometer_service_password)  # fmt: skip


def agent_params() -> dict[str, str]:
    """The OCF agent's parameters but those every lab agent has (provision/ocf_agents.py adds them)."""
    user, group = USER.split(":")
    return {"config": CONF, "binary": PROGRAM, "user": user, "group": group, "log": LOG}


@dataclass(frozen=True)
class Sample:
    meter: str
    resource: str  # the polled resource's id (an image's, a volume's)
    volume: float  # the value (image.size: bytes)
    at: float  # when the agent polled it, seconds since the epoch (Ceilometer's timestamp)


def take_samples(ctx: Context, node: str) -> list[Sample]:
    """Every sample waiting in QUEUE at ch. 3's RabbitMQ VIP, taken off it by `node` (provision/files/
    ceilometer_samples.py; the broker password on stdin): nothing else consumes them in the lab."""
    sc = ctx.scenario
    args = (str(sc.vip_for("rabbitmq").address), str(sc.services["rabbitmq"].port), "halab", QUEUE)
    r = ctx.provider.run(node, script_command(FILES / "ceilometer_samples.py", *args),
                         input=(ctx.secrets.rabbitmq_password + "\n").encode(), check=True, timeout=60)  # fmt: skip
    return [Sample(**json.loads(line)) for line in r.stdout.splitlines() if line.strip()]
