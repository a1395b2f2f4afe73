"""The Glance client against a fake Glance and Keystone on 127.0.0.1 (http.server in a thread): it uploads once,
then lists and downloads; what each answer becomes in the history (ok with the sha256, a failure, indeterminate)
is what image-intact and the downtime checks read. A half-done upload reuses its image; a 401 renews the token."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lab.checks.durability import image_intact
from lab.history import FAIL, INFO, OK, History, JsonlRecorder
from lab.wait import until
from lab.workload import image
from lab.workload.config import Endpoint, WorkloadConfig

pytestmark = pytest.mark.unit


class FakeOpenStack(BaseHTTPRequestHandler):
    """Keystone's auth/tokens and Glance's v2 images, with `script` deciding the next answers of Glance."""

    state: dict = {}

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _scripted(self) -> int | None:
        script = self.state["script"]
        return script.pop(0) if script else None

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/v3/auth/tokens":
            self.state["tokens"] += 1
            return self._answer(201, b"{}", {"X-Subject-Token": f"t{self.state['tokens']}"})
        self.state["creates"] += 1
        assert json.loads(body)["disk_format"] == "raw"
        self._answer(201, json.dumps({"id": f"img{self.state['creates']}"}).encode())

    def do_PUT(self) -> None:  # noqa: N802
        data = self.rfile.read(int(self.headers["Content-Length"]))
        forced = self._scripted()
        if forced:
            return self._answer(forced)
        self.state["stored"][self.path.split("/")[3]] = data
        self._answer(204)

    def do_GET(self) -> None:  # noqa: N802
        forced = self._scripted()
        if forced:
            return self._answer(forced)
        if self.headers["X-Auth-Token"] != f"t{self.state['tokens']}":
            return self._answer(401)
        if self.path.startswith("/v2/images?"):
            listed = [{"id": i} for i in self.state["stored"]]
            return self._answer(200, json.dumps({"images": listed}).encode())
        data = self.state["stored"].get(self.path.split("/")[3])
        self._answer(200, data) if data is not None else self._answer(204)


@pytest.fixture
def fake() -> Iterator[tuple[dict, int]]:
    FakeOpenStack.state = {"script": [], "tokens": 0, "creates": 0, "stored": {}}
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenStack)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield FakeOpenStack.state, server.server_address[1]
    server.shutdown()


def run_client(port: int, tmp_path: Path, ops: int, midway: tuple[int, Callable[[], None]] | None = None) -> History:
    """The client until `ops` ops completed; `midway` = (after how many, what to change in the fake then)."""
    cfg = WorkloadConfig(
        out_dir=str(tmp_path), run_id=3, interval_s=0.01, op_timeout_s=0.5,
        identity=Endpoint("keystone", "127.0.0.1", port, "admin", "pw"), image=Endpoint("glance", "127.0.0.1", port),
    )  # fmt: skip
    path = tmp_path / "glance.jsonl"
    rec, stop = JsonlRecorder(path, "glance-client"), threading.Event()
    client = threading.Thread(target=image.client, args=(cfg, rec, stop), daemon=True)
    client.start()

    def completed() -> int:
        return len([o for o in History.load(path).ops if o.type != "invoke"]) if path.exists() else 0

    for target in ([midway[0]] if midway else []) + [ops]:
        until(lambda t=target: completed() >= t, timeout=10, what=f"{target} ops of the Glance client")
        if midway and target == midway[0]:
            midway[1]()
    stop.set()
    client.join(timeout=5)
    return History.load(path)


def test_upload_then_lists_and_downloads_with_the_uploaded_sha256(fake: tuple[dict, int], tmp_path: Path) -> None:
    state, port = fake
    h = run_client(port, tmp_path, ops=6)
    done = [o for o in h.ops if o.type != "invoke"]
    assert [o.f for o in done[:3]] == ["upload", "list", "download"] or [o.f for o in done[:3]] == [
        "upload", "download", "list"
    ]  # fmt: skip
    digest = hashlib.sha256(image.image_data(3)).hexdigest()
    assert all(o.type == OK for o in done) and done[0].value == digest
    assert all(o.value == digest for o in done if o.f == "download") and state["creates"] == 1
    assert image_intact(h, "glance", since=done[0].time + 1e-6).passed


def test_data_gone_from_the_store_is_a_failure_image_intact_counts(fake: tuple[dict, int], tmp_path: Path) -> None:
    state, port = fake
    # the store loses the file: Glance lists nothing and answers a download with 204
    h = run_client(port, tmp_path, ops=7, midway=(3, state["stored"].clear))
    gone = [o for o in h.ops if o.type == FAIL and o.f in ("list", "download")]
    assert gone and not image_intact(h, "glance", since=h.ops[0].time).passed


def test_a_5xx_is_indeterminate_and_a_half_done_upload_reuses_its_image(fake: tuple[dict, int], tmp_path: Path) -> None:
    state, port = fake
    state["script"] = [503]  # the first data PUT fails after the image was created
    h = run_client(port, tmp_path, ops=3)
    uploads = [o for o in h.ops if o.f == "upload" and o.type != "invoke"]
    assert [o.type for o in uploads] == [INFO, OK] and state["creates"] == 1  # the same image, not a second one


def test_a_401_renews_the_token_and_goes_on(fake: tuple[dict, int], tmp_path: Path) -> None:
    state, port = fake

    def revoke() -> None:  # the client's token is no longer the valid one
        state["tokens"] += 1

    h = run_client(port, tmp_path, ops=8, midway=(3, revoke))
    refused = [o for o in h.ops if o.type == FAIL]
    assert refused and all((o.error or "").startswith("401") for o in refused)
    assert len(refused) == 1 and state["tokens"] == 3  # one refused op, then a new token (the third issued)
    assert [o.type for o in h.ops if o.type != "invoke"][-3:] == [OK] * 3


def test_keystone_unreachable_at_first_is_retried_not_the_clients_end(
    fake: tuple[dict, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Connects to Keystone that fail (NotSent: under TCG a connect to the VIP outlasted its timeout) are retried
    until a token comes, the first failure said on stderr; the client did not die of it (it did: its image was
    never uploaded)."""
    state, port = fake
    refused = {"left": 2}
    real = image.call

    def flaky(ep: Endpoint, *args: object, **kw: object):  # type: ignore[no-untyped-def]
        if ep.service == "keystone" and refused["left"]:
            refused["left"] -= 1
            raise image.NotSent("connect: timed out")
        return real(ep, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(image, "call", flaky)
    h = run_client(port, tmp_path, ops=3)
    assert refused["left"] == 0 and state["tokens"] == 1
    assert "no token from Keystone yet (try 1): NotSent('connect: timed out')" in capsys.readouterr().err
    assert [o.type for o in h.ops if o.type != "invoke"][:3] == [OK] * 3
