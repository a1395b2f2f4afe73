"""Role neutron: guide ch. 4's `p_neutron-server` for real: Debian's Neutron (Zed, python3-neutron, ML2) API under
uwsgi (the WSGI app Debian's neutron-api package runs), bound to the API VIP as the guide writes it (`bind_host`),
its database in ch. 3's MySQL through its VIP, tokens checked against Keystone at the VIP, RPC casts to ch. 3's
RabbitMQ VIP. Neutron's RPC server (neutron-rpc-server, what its agents talk to) does not run: no Neutron agent
runs in the lab (ch. 5 and 10 are not built), and without agents ML2 has no mechanism driver to bind ports with:
networks and subnets are made and listed, ports stay unbound. Nova is not there to notify of port changes.
What it shares with the other uwsgi APIs: provision/uwsgi_api.py."""

from __future__ import annotations

from provision import uwsgi_api
from provision.context import Context

API = uwsgi_api.UwsgiApi(
    # the scenario's service (ch. 9's stand-in has the same name); the guide's resource is p_neutron-server
    service="neutron-api", name="neutron", process="neutron-server", conf_name="neutron.conf",
    paste="neutron-api-paste.ini", log="neutron",
    # main_api_eventlet reads sys.argv (uwsgi's --pyargv) for the configuration file; ML2's sections are in it
    wsgi_source="from neutron.cmd.eventlet.server import main_api_eventlet\napplication = main_api_eventlet()\n",
    manage="import sys; from neutron.db.migration.cli import main; sys.exit(main())", manage_args="upgrade heads",
    catalog=("neutron", "network", ""), ask="networks",
    # one thread: importing neutron.cmd.eventlet monkey-patches with eventlet, and a second uwsgi thread then dies
    # on "greenlet.error: cannot switch to a different thread" (seen: the start timed out; Keystone's, likewise)
    threads=1,
)  # fmt: skip


def settings(ctx: Context) -> str:
    """neutron.conf with ML2's sections (carries three passwords: written 0600)."""
    sc = ctx.scenario
    return "\n".join(
        [
            "[DEFAULT]",
            f"bind_host = {uwsgi_api.address(API, sc)}",  # guide ch. 4: bound to the API VIP
            f"bind_port = {sc.services[API.service].port}",
            "core_plugin = ml2",
            "service_plugins =",  # no L3 or other service plugin: their agents are ch. 5's and ch. 10's
            "notify_nova_on_port_status_changes = false",  # no Nova in the lab
            "notify_nova_on_port_data_changes = false",
            *uwsgi_api.common_settings(API, ctx),
            "[ml2]",
            "type_drivers = flat",
            "tenant_network_types =",
            "mechanism_drivers =",
            "[ml2_type_flat]",
            "flat_networks = *",
            "",
        ]
    )
