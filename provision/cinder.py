"""Role cinder: guide ch. 4's `p_cinder-api` for real: Debian's Cinder API (Zed, python3-cinder) under uwsgi, bound
to the API VIP as the guide writes it (`osapi_volume_listen`), its database in ch. 3's MySQL through its VIP,
tokens checked by keystonemiddleware against Keystone at the VIP, RPC to ch. 3's RabbitMQ VIP (the guide's
`rabbit_host`; the API only casts there when a volume is created: no scheduler or volume service runs here).
What it shares with the other uwsgi APIs: provision/uwsgi_api.py."""

from __future__ import annotations

from provision import uwsgi_api
from provision.context import Context

API = uwsgi_api.UwsgiApi(
    service="cinder-api", name="cinder", process="cinder-api", conf_name="cinder.conf",
    paste="cinder-api-paste.ini", log="cinder",
    # initialize_application parses sys.argv: uwsgi's --pyargv carries the configuration file
    wsgi_source="from cinder.wsgi.wsgi import initialize_application\napplication = initialize_application()\n",
    manage="import sys; from cinder.cmd.manage import main; sys.exit(main())", manage_args="db sync",
    # Cinder's root is its version list (300 Multiple Choices); v3/<project>/ the API
    catalog=("cinderv3", "volumev3", "v3/%(project_id)s"), ask="volumes",
)  # fmt: skip


def settings(ctx: Context) -> str:
    """cinder.conf (carries three passwords: written 0600)."""
    sc = ctx.scenario
    return "\n".join(
        [
            "[DEFAULT]",
            f"osapi_volume_listen = {uwsgi_api.address(API, sc)}",  # guide ch. 4: bound to the API VIP
            f"osapi_volume_listen_port = {sc.services[API.service].port}",
            *uwsgi_api.common_settings(API, ctx),
            "",
        ]
    )
