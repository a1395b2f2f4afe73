"""Keystone clients through the VIP: one issues tokens (service `<identity>`, f `issue`: a password
authentication, so Keystone reads the user from the database or its cache), one validates the run's first token
over and over (service `<identity>-validate`, f `validate`): a token issued before the fault must still validate
after it, on whichever controller HAProxy picks, which holds only if every controller has the same Fernet keys.

A 201 or 200 is ok; a 5xx or a timeout after the request was sent is indeterminate (info), as for the API writer; a
4xx other than a 404 on validation is a failure (a token every controller should accept was refused)."""

from __future__ import annotations

import http.client
import json
import math
import threading

from lab.history import FAIL, INFO, INVOKE, OK, JsonlRecorder
from lab.workload.config import Endpoint, WorkloadConfig

DOMAIN, PROJECT = "Default", "admin"
VALIDATE_SUFFIX = "-validate"
CLIENTS = 2  # the issuer and the validator, each its own loop


def request_timeout_s(cfg: WorkloadConfig) -> float:
    """How long each Keystone client waits for an answer before it gives up on the request (the connect: half)."""
    return cfg.op_timeout_s * 2


def abandoned_backlog_ms(cfg: WorkloadConfig, stall_ms: int) -> int:
    """How long Keystone can take, once its workers stop hanging (a stall of `stall_ms`), to work off the requests
    the clients gave up on meanwhile: uwsgi takes its listen queue in order, the abandoned ones first (seen after a
    controller crash: 42 requests, 5.1 s, before the first answer a client still waited for). Each client gives up
    one request per request_timeout_s plus interval; each is served within the workload's stall_s (slower is a
    stall), one after another at worst."""
    per_client = math.ceil(stall_ms / ((request_timeout_s(cfg) + cfg.interval_s) * 1000))
    return CLIENTS * per_client * int(cfg.stall_s * 1000)


def auth_body(ep: Endpoint) -> bytes:
    user = {"name": ep.user, "domain": {"name": DOMAIN}, "password": ep.password}
    scope = {"project": {"name": PROJECT, "domain": {"name": DOMAIN}}}
    return json.dumps(
        {"auth": {"identity": {"methods": ["password"], "password": {"user": user}}, "scope": scope}}
    ).encode()


class NotSent(Exception):
    """The connect failed: nothing was sent, so the op did nothing (a failure, not indeterminate). Not an OSError:
    a reset or a broken pipe after the request went out (ConnectionError's kin) is indeterminate."""


def call(
    ep: Endpoint, timeout: float, method: str, path: str, headers: dict[str, str], body: bytes | None = None
) -> tuple[int, http.client.HTTPResponse, bytes]:
    """(status, the response, its body) of one HTTP request to `ep`, waiting `timeout` for the answer and half of
    it for the connect (WorkloadConfig.max_op_s: op_timeout_s, then twice that); raises NotSent when the connect
    failed, OSError or HTTPException when the request was sent and no whole answer came."""
    conn = http.client.HTTPConnection(ep.host, ep.port, timeout=timeout / 2)
    try:
        try:
            conn.connect()
        except OSError as exc:
            raise NotSent(f"connect: {exc}") from exc
        assert conn.sock is not None
        conn.sock.settimeout(timeout)
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp, resp.read()
    finally:
        conn.close()


def _request(
    ep: Endpoint, timeout: float, method: str, headers: dict[str, str], body: bytes | None = None
) -> tuple[int, str, str]:
    """(status, X-Subject-Token, start of the body) of a request to Keystone's auth/tokens."""
    status, resp, text = call(ep, timeout, method, "/v3/auth/tokens", headers, body)
    return status, resp.getheader("X-Subject-Token") or "", text[:300].decode(errors="replace")


def _op(
    rec: JsonlRecorder,
    f: str,
    service: str,
    n: int,
    ok_status: int,
    request: tuple[Endpoint, float, str, dict[str, str], bytes | None],
) -> str | None:
    """One recorded op (`request`: _request's arguments); returns the subject token of an ok one."""
    rec.record(INVOKE, f, n, service=service)
    try:
        status, token, text = _request(*request)
    except NotSent as exc:
        rec.record(FAIL, f, n, service=service, error=str(exc))
        return None
    except (OSError, http.client.HTTPException) as exc:
        rec.record(INFO, f, n, service=service, error=repr(exc))
        return None
    if status == ok_status:
        rec.record(OK, f, n, service=service)
        return token
    kind = INFO if status >= 500 else FAIL
    rec.record(kind, f, n, service=service, error=f"{status} {text[:200]}")
    return None


class FirstToken:
    """The run's first token, handed from the issuer to the validator."""

    def __init__(self) -> None:
        self.value = ""
        self.issued = threading.Event()

    def set(self, token: str) -> None:
        if token and not self.issued.is_set():
            self.value = token
            self.issued.set()


def issuer(cfg: WorkloadConfig, rec: JsonlRecorder, stop: threading.Event, first: FirstToken) -> None:
    ep = cfg.identity
    assert ep is not None
    headers = {"Content-Type": "application/json"}
    n = cfg.first_id
    while not stop.is_set():
        n += 1
        token = _op(rec, "issue", ep.service, n, 201, (ep, request_timeout_s(cfg), "POST", headers, auth_body(ep)))
        first.set(token or "")
        stop.wait(cfg.interval_s)


def validator(cfg: WorkloadConfig, rec: JsonlRecorder, stop: threading.Event, first: FirstToken) -> None:
    """Its own loop, not a step after each issue: a sequential client would spend the outage inside a hung issue
    and then find the validation fine, blind to the gap (a floor check caught it: 0 ms under a 453 ms floor)."""
    ep = cfg.identity
    assert ep is not None
    while not first.issued.wait(0.1):
        if stop.is_set():
            return
    headers = {"X-Auth-Token": first.value, "X-Subject-Token": first.value}  # the token checks itself
    n = cfg.first_id
    while not stop.is_set():
        n += 1
        _op(rec, "validate", ep.service + VALIDATE_SUFFIX, n, 200, (ep, request_timeout_s(cfg), "GET", headers, None))
        stop.wait(cfg.interval_s)
