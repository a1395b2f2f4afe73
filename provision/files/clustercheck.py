#!/usr/bin/python3
"""clustercheck for HAProxy's `option httpchk` (guide ch. 6: xinetd service galera-monitor on port 9200).

The guide runs /usr/bin/clustercheck from xinetd; nodes here have no xinetd, so this is a small HTTP server doing
what that script does: ask the local MariaDB for wsrep_local_state and answer
  200 "Galera cluster node is synced."      when it is 4 (Synced), or 2 (Donor) with --available-when-donor
  503 "Galera cluster node is not synced."  otherwise, including when MariaDB does not answer.
AVAILABLE_WHEN_DONOR defaults to 0 as in the original: a donor serving an rsync SST blocks writes.

Standard library only; runs with the system /usr/bin/python3 inside a lab node. The account comes from a MySQL
option file (the guide's /etc/sysconfig/clustercheck), read by the mysql client itself.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SYNCED, DONOR = "4", "2"


def local_state(defaults_file: str, timeout: float) -> str | None:
    """wsrep_local_state as the server reports it, or None when it cannot be read."""
    try:
        p = subprocess.run(
            [
                "mysql",
                f"--defaults-file={defaults_file}",
                "--protocol=socket",
                "--connect-timeout=2",
                "-N",
                "-B",
                "-e",
                "SHOW GLOBAL STATUS LIKE 'wsrep_local_state'",
            ],
            capture_output=True,
            text=True,
            timeout=timeout,  # a frozen mysqld must not hang HAProxy's check
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if p.returncode != 0:
        return None
    fields = p.stdout.strip().split("\t")
    return fields[1] if len(fields) == 2 else None


def available(state: str | None, when_donor: bool) -> bool:
    return state == SYNCED or (when_donor and state == DONOR)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "clustercheck"
    defaults_file = "/etc/mysql/clustercheck.cnf"
    when_donor = False
    timeout_s = 5.0

    def answer(self, head_only: bool = False) -> None:
        ok = available(local_state(self.defaults_file, self.timeout_s), self.when_donor)
        body = b"Galera cluster node is synced.\r\n" if ok else b"Galera cluster node is not synced.\r\n"
        self.send_response(200 if ok else 503)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head_only:
            self.wfile.write(body)
        self.close_connection = True

    # HAProxy's `option httpchk` sends OPTIONS / by default; xinetd's clustercheck answered whatever came.
    def do_OPTIONS(self) -> None:
        self.answer()

    def do_GET(self) -> None:
        self.answer()

    def do_HEAD(self) -> None:
        self.answer(head_only=True)

    def log_message(self, format: str, *args: object) -> None:
        pass  # a check every 2 s per HAProxy would fill the log; failures show in HAProxy's


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--port", type=int, default=9200)
    ap.add_argument("--defaults-file", default=Handler.defaults_file)
    ap.add_argument("--available-when-donor", action="store_true")
    ap.add_argument("--check", action="store_true", help="print the answer once and exit 0 (200) or 1 (503)")
    args = ap.parse_args(argv)
    Handler.defaults_file = args.defaults_file
    Handler.when_donor = args.available_when_donor
    if args.check:
        state = local_state(args.defaults_file, Handler.timeout_s)
        print(f"wsrep_local_state={state}")
        return 0 if available(state, args.available_when_donor) else 1
    ThreadingHTTPServer.allow_reuse_address = True  # xinetd's `flags = REUSE`
    server = ThreadingHTTPServer((args.bind, args.port), Handler)
    server.daemon_threads = True
    print(f"clustercheck listening on {args.bind}:{args.port}", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
