"""Role api: guide ch. 9 "OpenStack API services" on the controllers, as one stand-in process per node
(provision/files/api_standin.py) that listens on every API port HAProxy balances."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lab.scenario import Scenario
from provision import glance, keystone
from provision.context import Context
from provision.haproxy import backend_role

PROGRAM_SOURCE = Path(__file__).resolve().parent / "files" / "api_standin.py"
# /var/lib, not /etc/halab: on netns /var/lib is an overlay private to each node, while /etc/halab would be
# the host's directory, shared by every node and every lab (see README, netns provider).
DIR = "/var/lib/halab"
PROGRAM = f"{DIR}/api_standin.py"
CONFIG = f"{DIR}/api.json"
LOG = "/var/log/halab/api.log"
USER = "nobody:nogroup"  # every API port is above 1024: no reason to run as root
DATABASE, TABLE, QUEUE = "halab", "api_writes", "api_writes"
DB_USER = AMQP_USER = "halab"
RABBITMQ_PORT = 5672
TIMEOUT_S = 0.8  # per backend step; the lab's HTTP writer waits 2 s for the whole answer

# For the Galera role (through the local socket, like provision/mysql.py's client_sql); the stand-in also
# creates the table itself on the first write that finds it missing.
TABLE_SQL = (
    f"CREATE TABLE IF NOT EXISTS {DATABASE}.{TABLE} (id BIGINT PRIMARY KEY, port INT, node VARCHAR(64), "
    "at DOUBLE) ENGINE=InnoDB;"
)


def api_ports(scenario: Scenario) -> dict[str, int]:
    """service -> port for every service HAProxy sends to the `api` nodes that no real daemon serves (Keystone's
    ports are provision/keystone.py's, Glance's provision/glance.py's)."""
    real = (keystone.SERVICES if keystone.enabled(scenario) else ()) + (
        glance.SERVICES if glance.enabled(scenario) else ()
    )
    services = scenario.services.items()
    return {name: svc.port for name, svc in services if backend_role(name) == "api" and name not in real}


def _address(scenario: Scenario, node: str, network: str) -> str:
    return str(scenario.nodes[node].addresses[network])


def settings(ctx: Context, node: str) -> dict[str, Any]:
    """The stand-in's config file (carries both passwords: written 0600)."""
    sc = ctx.scenario
    ports = api_ports(sc)
    api_vip = sc.vip_for(next(iter(ports))) if ports else next(iter(sc.vips.values()))
    db_vip = sc.vip_for("galera")
    brokers = [n.name for n in sc.nodes_with_role("rabbitmq")]
    brokers.sort(key=lambda name: name != node)  # the local broker first, then the scenario's order
    return {
        "node": node,
        "listen": _address(sc, node, api_vip.network),
        "ports": ports,
        "timeout_s": TIMEOUT_S,
        "db": {
            "host": str(db_vip.address),
            "port": sc.services["galera"].port,
            "user": DB_USER,
            "password": ctx.secrets.mysql_password,
            "database": DATABASE,
            "table": TABLE,
        },
        "amqp": {
            "hosts": [_address(sc, b, api_vip.network) for b in brokers],
            "port": RABBITMQ_PORT,
            "user": AMQP_USER,
            "password": ctx.secrets.rabbitmq_password,
            "vhost": "/",
            "queue": QUEUE,
            "queue_type": "quorum" if ctx.opts.quorum_queues else "classic",
        },
    }


def configure_node(ctx: Context, node: str) -> None:
    # put() creates missing directories 0700 (umask 077); the stand-in runs as nobody and must reach its files.
    ctx.provider.run(node, f"mkdir -p {DIR} /var/log/halab && chmod 755 {DIR}", check=True, timeout=15)
    ctx.provider.put(node, PROGRAM, PROGRAM_SOURCE.read_text(), mode=0o755)
    ctx.provider.put(node, CONFIG, json.dumps(settings(ctx, node), indent=2) + "\n", mode=0o600, owner=USER)


def command() -> str:
    user, group = USER.split(":")
    # setpriv (util-linux) drops root before exec; the log file is opened by the shell first, as root.
    return f"setpriv --reuid={user} --regid={group} --clear-groups /usr/bin/python3 {PROGRAM} {CONFIG}"


def start(ctx: Context, node: str) -> None:
    ctx.provider.start_daemon(node, command(), LOG)
