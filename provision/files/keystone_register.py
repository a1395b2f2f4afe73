"""Register an OpenStack service in Keystone, idempotently: the `service` project, the service's user (admin role
in it), the service and its public/internal/admin endpoints, as the install guides do with `openstack` commands,
in one process (each `openstack` call costs a second of CPU here). Run on a node with python3-keystoneclient:

    python3 keystone_register.py AUTH_URL REGION NAME TYPE URL USER   < stdin: admin password, the user's password

An empty URL registers the user only (a service with no API of its own, Ceilometer's central agent). Nothing
secret on the command line."""

import sys

from keystoneauth1 import exceptions, session
from keystoneauth1.identity import v3
from keystoneclient.v3 import client

auth_url, region, name, kind, url, user_name = sys.argv[1:7]
admin_password, user_password = (sys.stdin.readline().rstrip("\n") for _ in range(2))
auth = v3.Password(auth_url=auth_url, username="admin", password=admin_password, project_name="admin",
                   user_domain_name="Default", project_domain_name="Default")
ks = client.Client(session=session.Session(auth=auth, timeout=30))


def one(manager, **match):
    found = manager.list(**match)
    return found[0] if found else None


try:
    project = one(ks.projects, name="service") or ks.projects.create("service", "default", description="services")
except exceptions.Conflict:  # made meanwhile by another service's registration (provisioning runs them at once)
    project = one(ks.projects, name="service")
user = one(ks.users, name=user_name)
if user:
    ks.users.update(user, password=user_password)  # a lab's secrets are the truth
else:
    user = ks.users.create(user_name, domain="default", password=user_password, default_project=project)
ks.roles.grant(one(ks.roles, name="admin"), user=user, project=project)
if not url:
    print(f"registered user {user_name} (no service: {name} has no API)")
    sys.exit(0)
service = one(ks.services, name=name, type=kind) or ks.services.create(name, type=kind)
have = {e.interface: e for e in ks.endpoints.list(service=service)}
for interface in ("public", "internal", "admin"):
    if interface in have and have[interface].url == url:
        continue
    if interface in have:
        ks.endpoints.delete(have[interface])
    ks.endpoints.create(service, url, interface=interface, region=region)
print(f"registered {name} ({kind}) at {url}")
