"""One OpenStack API question from a node's python3, answered with an HTTP status (or "error ..."): the harness
sends this file's text with `python3 -c` (nothing to copy onto the node), secrets on stdin, never as arguments.

    token KEYSTONE_URL USER PROJECT DOMAIN TIMEOUT      < password          POST auth/tokens (201: issued)
    validate KEYSTONE_URL TIMEOUT                       < token             GET auth/tokens of the token itself (200)
    images KEYSTONE_URL GLANCE_URL USER PROJECT DOMAIN TIMEOUT  < password  a token, then GET v2/images (200)
    volumes KEYSTONE_URL CINDER_URL USER PROJECT DOMAIN TIMEOUT < password  a token, then GET v3/<project>/volumes
    networks KEYSTONE_URL NEUTRON_URL USER PROJECT DOMAIN TIMEOUT < password  a token, then GET v2.0/networks
    sha256 URL TIMEOUT                                  < token             GET URL: "sha256 <hex>" of its body

token, images, volumes and networks add, to an answer that is not the wanted one, what the service's own version
document (no token, no database) answered: "500; versions 200" is a live service whose backend fails, "error timed
out; versions error timed out" a hung one (Cinder's root, its version list, answers 300 Multiple Choices).
"""

import hashlib
import json
import sys
import urllib.error
import urllib.request


def call(req, timeout):
    """(status, response or None)"""
    try:
        resp = urllib.request.urlopen(req, timeout=float(timeout))
        return resp.status, resp
    except urllib.error.HTTPError as exc:
        return exc.code, None


def token(url, user, project, domain, timeout):
    password = sys.stdin.readline().rstrip("\n")
    ident = {"methods": ["password"], "password": {"user": {"name": user, "domain": {"name": domain},
                                                             "password": password}}}
    scope = {"project": {"name": project, "domain": {"name": domain}}}
    body = json.dumps({"auth": {"identity": ident, "scope": scope}}).encode()
    req = urllib.request.Request(url + "auth/tokens", body, {"Content-Type": "application/json"})
    status, resp = call(req, timeout)
    if not resp:
        return status, "", ""
    try:
        project_id = json.loads(resp.read() or b"{}").get("token", {}).get("project", {}).get("id", "")
    except ValueError:  # not Keystone's JSON: no project to list in
        project_id = ""
    return status, resp.headers.get("X-Subject-Token", ""), project_id


def asked(fn, *args):
    """fn's answer, or what stopped it ("error timed out", "error Remote end closed connection ...")"""
    try:
        return fn(*args)
    except OSError as exc:
        return f"error {exc}"


def versions(url, timeout):
    """The service's version document (Keystone's /v3/, Glance's /versions): served without a token or a database"""
    return asked(lambda: call(urllib.request.Request(url), timeout)[0])


def listed(args, path, versions_path):
    """A token, then GET path(service URL, project id) with it: 200, or what failed and what the service's version
    document (service URL + versions_path) answered."""
    keystone, service, user, project, domain, timeout = args
    issued = asked(token, keystone, user, project, domain, timeout)
    if isinstance(issued, str) or issued[0] != 201:
        answer = f"token {issued if isinstance(issued, str) else issued[0]}"
    else:
        listing = urllib.request.Request(path(service, issued[2]), headers={"X-Auth-Token": issued[1]})
        answer = asked(lambda: call(listing, timeout)[0])
    return answer if answer == 200 else f"{answer}; versions {versions(service + versions_path, timeout)}"


def main(mode, *args):
    if mode == "token":
        status = asked(lambda: token(*args)[0])
        return status if status == 201 else f"{status}; versions {versions(args[0], args[-1])}"
    if mode == "validate":
        url, timeout = args
        t = sys.stdin.readline().strip()
        return call(urllib.request.Request(url + "auth/tokens", headers={"X-Auth-Token": t, "X-Subject-Token": t}),
                    timeout)[0]
    if mode == "images":
        return listed(args, lambda base, _project: base + "v2/images", "versions")
    if mode == "volumes":
        return listed(args, lambda base, project: f"{base}v3/{project}/volumes", "")
    if mode == "networks":
        return listed(args, lambda base, _project: base + "v2.0/networks", "")
    if mode == "sha256":
        url, timeout = args
        status, resp = call(urllib.request.Request(url, headers={"X-Auth-Token": sys.stdin.readline().strip()}),
                            timeout)
        return f"sha256 {hashlib.sha256(resp.read()).hexdigest()}" if resp and status == 200 else status
    raise SystemExit(f"unknown mode {mode}")


try:
    print(main(*sys.argv[1:]))
except OSError as exc:
    print(f"error {exc}")
