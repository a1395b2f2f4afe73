"""A Glance client through the VIP (service `<image>`): it uploads one small image first (f `upload`: create, then
the data; its ok carries the data's sha256), then lists the images (f `list`: the image must be listed) and
downloads it (f `download`: its ok carries the sha256 of what came back) in turn until stopped. The image is
uploaded before the first fault (the trial waits for a first ok of every service), so every later download asks
whether it outlived the fault, whole (lab/checks/durability.image_intact).

Its token comes from Keystone through the VIP once, and again only when Glance answers 401: an outage of Keystone
is the Keystone client's to measure, not this one's. A 5xx or a timeout after the request was sent is
indeterminate (info); a wrong checksum, an image no longer listed, or a 404 is a failure."""

from __future__ import annotations

import hashlib
import http.client
import json
import sys
import threading

from lab.history import FAIL, INFO, INVOKE, OK, JsonlRecorder
from lab.workload.config import Endpoint, WorkloadConfig
from lab.workload.identity import NotSent, auth_body, call

SIZE = 64 * 1024  # small: the point is that it survives, not throughput
TOKEN_RETRIES_SAID = 20  # the first failed token request and every 20th after it go to stderr


def image_data(run_id: int) -> bytes:
    """The run's image: deterministic from the run id (a rerun uploads the same bytes)."""
    out, block = bytearray(), f"halab run {run_id}".encode()
    while len(out) < SIZE:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:SIZE])


class Rejected(Exception):
    """An answer that is a failure of the service (a 4xx: the request was refused or the image is missing)."""


class Indeterminate(Exception):
    """A 5xx: the service answered but may have done it or not."""


def _call(
    ep: Endpoint, timeout: float, method: str, path: str, headers: dict[str, str], body: bytes | None = None
) -> tuple[int, bytes]:
    status, _, data = call(ep, timeout, method, path, headers, body)
    return status, data


def _expect(status: int, body: bytes, ok: int) -> None:
    if status == ok:
        return
    text = f"{status} {body[:200].decode(errors='replace')}"
    raise Indeterminate(text) if status >= 500 else Rejected(text)


class _Client:
    def __init__(self, cfg: WorkloadConfig) -> None:
        assert cfg.image is not None and cfg.identity is not None
        self.cfg, self.ep, self.keystone = cfg, cfg.image, cfg.identity
        self.timeout = cfg.op_timeout_s * 2
        self.data = image_data(cfg.run_id)
        self.digest = hashlib.sha256(self.data).hexdigest()
        self.token = ""
        self.created = ""  # the image made by the upload's first step
        self.image_id = ""  # the image whose data went in: what lists and downloads ask for

    def fetch_token(self, stop: threading.Event) -> bool:
        """A token from Keystone through the VIP, retried until one comes or the run stops."""
        headers = {"Content-Type": "application/json"}
        tries = 0
        while not stop.is_set():
            try:
                status, resp, _ = call(self.keystone, self.timeout, "POST", "/v3/auth/tokens", headers,
                                       auth_body(self.keystone))  # fmt: skip
                self.token = resp.getheader("X-Subject-Token") or ""
                if status == 201 and self.token:
                    return True
                why = f"answered {status}"
            except (NotSent, OSError, http.client.HTTPException) as exc:
                why = repr(exc)  # not reachable yet (seen under TCG: a connect to the VIP outlasted its timeout)
            if tries % TOKEN_RETRIES_SAID == 0:  # the workload log says why the image client waits, not only that
                print(f"image client: no token from Keystone yet (try {tries + 1}): {why}", file=sys.stderr, flush=True)
            tries += 1
            stop.wait(self.cfg.interval_s)
        return False

    def headers(self, **extra: str) -> dict[str, str]:
        return {"X-Auth-Token": self.token, **extra}

    def upload(self) -> str:
        """Create the image (once: a create whose data never went in is reused, not left queued), then its data."""
        if not self.created:
            meta = {"name": f"halab-{self.cfg.run_id}", "disk_format": "raw", "container_format": "bare"}
            hdrs = self.headers(**{"Content-Type": "application/json"})
            status, body = _call(self.ep, self.timeout, "POST", "/v2/images", hdrs, json.dumps(meta).encode())
            _expect(status, body, 201)
            self.created = json.loads(body)["id"]
        hdrs = self.headers(**{"Content-Type": "application/octet-stream"})
        status, body = _call(self.ep, self.timeout, "PUT", f"/v2/images/{self.created}/file", hdrs, self.data)
        if status == 409:  # not `queued` any more (a half-done upload): start over with a new image
            self.created = ""
        _expect(status, body, 204)
        self.image_id = self.created
        return self.digest

    def list(self) -> str:
        status, body = _call(self.ep, self.timeout, "GET", f"/v2/images?name=halab-{self.cfg.run_id}", self.headers())
        _expect(status, body, 200)
        ids = [i["id"] for i in json.loads(body).get("images", [])]
        if self.image_id not in ids:
            raise Rejected(f"image {self.image_id} not listed (listed: {ids})")
        return self.image_id

    def download(self) -> str:
        status, body = _call(self.ep, self.timeout, "GET", f"/v2/images/{self.image_id}/file", self.headers())
        if status == 204:  # Glance's answer when the image's data is missing from the store
            raise Rejected(f"204 image {self.image_id} has no data: gone from the store")
        _expect(status, body, 200)
        got = hashlib.sha256(body).hexdigest()
        if got != self.digest:
            raise Rejected(f"checksum mismatch: sha256 {got} ({len(body)} bytes), uploaded {self.digest}")
        return got


def client(cfg: WorkloadConfig, rec: JsonlRecorder, stop: threading.Event) -> None:
    c = _Client(cfg)
    service = cfg.image.service if cfg.image else ""
    if not c.fetch_token(stop):
        return
    n = cfg.first_id
    while not stop.is_set():
        n += 1
        f = "upload" if not c.image_id else ("list" if n % 2 else "download")
        step = {"upload": c.upload, "list": c.list, "download": c.download}[f]
        rec.record(INVOKE, f, n, service=service)
        try:
            rec.record(OK, f, step(), service=service)
        except NotSent as exc:
            rec.record(FAIL, f, n, service=service, error=str(exc))
        except Rejected as exc:
            rec.record(FAIL, f, n, service=service, error=str(exc))
            if str(exc).startswith("401"):  # the token expired or was revoked: a new one, then go on
                c.fetch_token(stop)
        except (Indeterminate, OSError, http.client.HTTPException, ValueError, KeyError) as exc:
            rec.record(INFO, f, n, service=service, error=repr(exc))
        stop.wait(cfg.interval_s)
