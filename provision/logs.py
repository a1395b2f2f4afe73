"""Where each role's daemons log inside a node (`halab logs NODE [SERVICE]`)."""

from __future__ import annotations

import shlex

LOGS = {
    "corosync": "/var/log/corosync/*",
    "pacemaker": "/var/log/pacemaker/*",
    "mysql": "/var/log/mysql/*",
    "galera": "/var/log/mysql/*",
    "rabbitmq": "/var/log/rabbitmq/*",
    "haproxy": "/var/log/halab/haproxy.log",
    "keepalived": "/var/log/halab/keepalived.log",
    "memcached": "/var/log/halab/memcached.log",
    "api": "/var/log/halab/api.log",
    "keystone": "/var/log/halab/keystone.log",  # uwsgi's and Keystone's own lines (provision/keystone.py)
    "glance": "/var/log/halab/glance-api.log",
    "cinder": "/var/log/halab/cinder-api.log",
    "neutron": "/var/log/halab/neutron-server.log",
    "ceilometer": "/var/log/halab/ceilometer-agent-central.log",
    "clustercheck": "/var/log/halab/clustercheck.log",
    "drbd": "/var/log/kern.log",
}


def command(service: str | None, *, lines: int = 100, follow: bool = False) -> str:
    """A shell command for the node: the last `lines` of the service's logs (every log without a service)."""
    if service is not None and service not in LOGS:
        raise KeyError(f"no logs known for {service!r}: use one of {', '.join(LOGS)} (or none for every log)")
    where = LOGS[service] if service else "/var/log/*/* /var/log/*.log"
    tail = f"tail -n {int(lines)} {'-F' if follow else ''}"
    # the glob stays unquoted (expanded in the node); files that are not there yet are skipped
    return f'for f in {where}; do [ -f "$f" ] && set -- "$@" "$f"; done; [ $# -gt 0 ] && exec {tail} "$@"; ' + (
        f"echo {shlex.quote(f'no log files at {where}')} >&2; exit 1"
    )
