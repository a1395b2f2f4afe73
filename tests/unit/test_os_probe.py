"""provision/files/os_probe.py, the monitors' API questions, against a loopback HTTP server that answers as Keystone
and Glance did while ch. 3's MySQL failed over under them (token requests closed without a response, image lists
500, version documents 200), and as a hung service does; Cinder's volume list is asked in the token's project."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from provision import ocf_agents

pytestmark = pytest.mark.unit


class Service(BaseHTTPRequestHandler):
    mode = "db-down"  # "up", "list-fails" (tokens, no list), "db-down" or "hung"
    released = threading.Event()  # a hung request answers nothing until the test is over

    def _hung(self) -> bool:
        if self.mode == "hung":
            self.released.wait(30)
        return self.mode == "hung"

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self._hung():
            return
        if self.mode in ("up", "list-fails"):
            body = b'{"token": {"project": {"id": "p1d"}}}'
            self.send_response(201)
            self.send_header("X-Subject-Token", "gAAAAA-token")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:  # Keystone's uwsgi: the app raised (DBConnectionError), nothing sent
            self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802
        if self._hung():
            return
        if self.path == "/":  # Cinder's root: its version list, 300 Multiple Choices
            status = 300
        elif self.path.endswith("/volumes") and self.path != "/v3/p1d/volumes":  # another project's: none here
            status = 404
        elif self.path in ("/v3/", "/versions") or self.mode == "up":
            status = 200
        else:
            status = 500
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def url() -> Iterator[str]:
    Service.released.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Service)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    Service.released.set()
    server.shutdown()


def probe(mode: str, *args: str) -> str:
    r = subprocess.run([sys.executable, str(ocf_agents.PROBE), mode, *args], input="secret\n", capture_output=True,
                       text=True, timeout=30)  # fmt: skip
    return r.stdout.strip()


@pytest.mark.parametrize(
    ("mode", "token", "images"),
    [
        ("up", "201", "200"),
        ("db-down", "error Remote end closed connection without response; versions 200", "token error Remote end "
         "closed connection without response; versions 200"),  # fmt: skip
        ("hung", "error timed out; versions error timed out", "token error timed out; versions error timed out"),
    ],
)
def test_a_failed_answer_comes_with_what_the_version_document_said(url: str, mode: str, token: str,
                                                                   images: str) -> None:  # fmt: skip
    Service.mode = mode
    assert probe("token", f"{url}v3/", "admin", "admin", "Default", "1") == token
    assert probe("images", f"{url}v3/", url, "admin", "admin", "Default", "1") == images


def test_a_live_glance_whose_list_fails(url: str) -> None:
    """A token issued, the list a 500 (Glance's database gone), Glance's versions 200."""
    Service.mode = "list-fails"
    assert probe("images", f"{url}v3/", url, "admin", "admin", "Default", "1") == "500; versions 200"


def test_cinders_volume_list_is_asked_in_the_tokens_project(url: str) -> None:
    """The volume list is the token's project's (v3/<project id>/volumes): 200 up; a failing one says what Cinder's
    root (300, its version list) answered."""
    Service.mode = "up"
    assert probe("volumes", f"{url}v3/", url, "admin", "admin", "Default", "1") == "200"
    Service.mode = "list-fails"
    assert probe("volumes", f"{url}v3/", url, "admin", "admin", "Default", "1") == "500; versions 300"
    Service.mode = "db-down"
    assert probe("volumes", f"{url}v3/", url, "admin", "admin", "Default", "1") == (
        "token error Remote end closed connection without response; versions 300"
    )


def test_neutrons_network_list(url: str) -> None:
    Service.mode = "up"
    assert probe("networks", f"{url}v3/", url, "admin", "admin", "Default", "1") == "200"
    Service.mode = "list-fails"
    assert probe("networks", f"{url}v3/", url, "admin", "admin", "Default", "1").startswith("500; versions ")
