#!/usr/bin/python3
"""A stand-in for the OpenStack API services of guide ch. 9, behind HAProxy (ch. 8).

One process listens on every API port of the scenario on the node's own address (a thread per port), and does
per request what an API does that matters to availability: answer health checks, and for a write touch both
backends the guide makes highly available.

  GET|HEAD|OPTIONS /   200 at once, no backend touched (HAProxy's `option httpchk` sends OPTIONS / HTTP/1.0)
  POST|GET /write?id=N insert (N, port, node, time) into halab.api_writes THROUGH THE DATABASE VIP, then publish
                       {"id": N, ...} to RabbitMQ with a publisher confirm (brokers tried in order, local first,
                       as ch. 7's rabbit_hosts). 200 only when both succeeded; 503 naming the backend that failed
                       ("mysql: ..." or "rabbitmq: ..."); 409 if the id is already there; 400 on a bad id.
  GET /stats           counters as JSON

Runs with the system /usr/bin/python3: standard library, python3-pymysql and python3-pika (Debian packages).
Usage: api_standin.py CONFIG.json  (written 0600 by provision/api.py: listen address, ports, VIP, credentials).
"""

from __future__ import annotations

import concurrent.futures
import json
import queue
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pika
import pymysql

NO_SUCH_TABLE, DUPLICATE_KEY = 1146, 1062


def log(msg: str) -> None:
    sys.stderr.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} api_standin: {msg}\n")
    sys.stderr.flush()


class Publisher(threading.Thread):
    """Owns the one AMQP connection (pika's BlockingConnection is not thread-safe). HTTP threads hand it a
    message and wait for the broker's confirm with a deadline, so a dead broker costs a 503, not a hang."""

    def __init__(self, amqp: dict[str, Any], timeout: float) -> None:
        super().__init__(name="amqp-publisher", daemon=True)
        self.amqp, self.timeout = amqp, timeout
        self.jobs: queue.Queue[tuple[bytes, concurrent.futures.Future[None]]] = queue.Queue()
        self.conn: pika.BlockingConnection | None = None
        self.channel: Any = None

    def publish(self, body: bytes, timeout: float) -> None:
        fut: concurrent.futures.Future[None] = concurrent.futures.Future()
        self.jobs.put((body, fut))
        try:
            fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()  # still queued: never sent
            raise TimeoutError(f"no confirm within {timeout:.1f}s") from None

    def run(self) -> None:
        while True:
            try:
                body, fut = self.jobs.get(timeout=0.2)
            except queue.Empty:
                self._idle()
                continue
            if not fut.set_running_or_notify_cancel():
                continue  # its requester gave up before we got to it
            try:
                self._publish(body)
                fut.set_result(None)
            except Exception as exc:  # any failure: a fresh connection next time
                self._drop()
                fut.set_exception(exc)

    def _connect(self) -> None:
        a = self.amqp
        errors = []
        for host in a["hosts"]:  # in order, the local broker first
            params = pika.ConnectionParameters(
                host=host,
                port=a["port"],
                virtual_host=a.get("vhost", "/"),
                credentials=pika.PlainCredentials(a["user"], a["password"]),
                connection_attempts=1,
                socket_timeout=self.timeout,
                stack_timeout=self.timeout * 2,
                blocked_connection_timeout=self.timeout * 2,
                heartbeat=2,  # serviced while idle by _idle(); a vanished broker is noticed within seconds
            )
            try:
                self.conn = pika.BlockingConnection(params)
            except Exception as exc:
                errors.append(f"{host}: {exc!r}")
                continue
            ch = self.conn.channel()
            args = {"x-queue-type": a["queue_type"]} if a.get("queue_type", "classic") != "classic" else None
            ch.queue_declare(queue=a["queue"], durable=True, arguments=args)
            ch.confirm_delivery()
            self.channel = ch
            log(f"rabbitmq: connected to {host}")
            return
        raise ConnectionError("no broker reachable: " + "; ".join(errors))

    def _publish(self, body: bytes) -> None:
        if self.channel is None:
            self._connect()
        # mandatory + confirms: an unroutable or nacked message raises instead of vanishing.
        self.channel.basic_publish(
            exchange="",
            routing_key=self.amqp["queue"],
            body=body,
            properties=pika.BasicProperties(delivery_mode=2, content_type="application/json"),
            mandatory=True,
        )

    def _idle(self) -> None:
        if self.conn is not None:
            try:
                self.conn.process_data_events(time_limit=0)  # heartbeats
            except Exception as exc:
                log(f"rabbitmq: connection lost while idle: {exc!r}")
                self._drop()

    def _drop(self) -> None:
        conn, self.conn, self.channel = self.conn, None, None
        try:
            if conn is not None and conn.is_open:
                conn.close()
        except Exception:
            pass


class App:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.node: str = cfg["node"]
        self.timeout = float(cfg.get("timeout_s", 0.8))
        self.publisher = Publisher(cfg["amqp"], self.timeout)
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def count(self, key: str) -> None:
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1

    def insert(self, row_id: int, port: int) -> None:
        db = self.cfg["db"]
        table = f"`{db['database']}`.`{db['table']}`"
        conn = pymysql.connect(
            host=db["host"],
            port=db["port"],
            user=db["user"],
            password=db["password"],
            database=db["database"],
            connect_timeout=self.timeout,
            read_timeout=self.timeout,
            write_timeout=self.timeout,
            autocommit=False,
        )
        try:
            with conn.cursor() as cur:
                sql = f"INSERT INTO {table} (id, port, node, at) VALUES (%s, %s, %s, %s)"
                args = (row_id, port, self.node, time.time())
                try:
                    cur.execute(sql, args)
                except pymysql.err.ProgrammingError as exc:
                    if exc.args[0] != NO_SUCH_TABLE:
                        raise
                    # First write of a fresh cluster: create the table (provision/api.py TABLE_SQL) and go on.
                    cur.execute(
                        f"CREATE TABLE IF NOT EXISTS {table} (id BIGINT PRIMARY KEY, port INT, node VARCHAR(64), "
                        "at DOUBLE) ENGINE=InnoDB"
                    )
                    cur.execute(sql, args)
            conn.commit()
        finally:
            conn.close()

    def write(self, row_id: int, port: int) -> tuple[int, str]:
        try:
            self.insert(row_id, port)
        except pymysql.err.IntegrityError as exc:
            if exc.args[0] == DUPLICATE_KEY:
                self.count("409")
                return 409, f"mysql: id {row_id} is already there"
            return self.failed("mysql", exc)
        except Exception as exc:
            return self.failed("mysql", exc)
        body = json.dumps({"id": row_id, "port": port, "node": self.node, "at": time.time()}).encode()
        try:
            self.publisher.publish(body, self.timeout * 2)
        except Exception as exc:
            return self.failed("rabbitmq", exc, f" (row {row_id} was written)")
        self.count("200")
        return 200, f"ok id={row_id} node={self.node} port={port}"

    def failed(self, backend: str, exc: BaseException, note: str = "") -> tuple[int, str]:
        self.count(f"503 {backend}")
        msg = f"{backend}: {exc!r}{note}"
        log(msg)
        return 503, msg


class Handler(BaseHTTPRequestHandler):
    server_version = "halab-api-standin"
    timeout = 10  # a client that connects and says nothing (a TCP check) does not hold a thread for long

    @property
    def app(self) -> App:
        return cast("Server", self.server).app  # the only server this handler is given (main below)

    @property
    def port(self) -> int:
        return cast("Server", self.server).server_address[1]

    def reply(self, status: int, text: str, content_type: str = "text/plain") -> None:
        body = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Halab-Node", self.app.node)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def route(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/" and self.command in ("GET", "HEAD", "OPTIONS"):
            self.reply(200, f"ok node={self.app.node} port={self.port}")
        elif url.path == "/write" and self.command in ("GET", "POST"):
            ids = parse_qs(url.query).get("id", [])
            if len(ids) != 1 or not ids[0].isdigit():
                self.reply(400, "want /write?id=N with N a non-negative integer")
                return
            self.reply(*self.app.write(int(ids[0]), self.port))
        elif url.path == "/stats" and self.command == "GET":
            with self.app.lock:
                self.reply(200, json.dumps(self.app.counts), "application/json")
        else:
            self.reply(404, f"no {self.command} {url.path}")

    do_GET = do_POST = do_HEAD = do_OPTIONS = route

    def log_message(self, format: str, *args: Any) -> None:
        pass  # health checks every few seconds on every port: failures are logged by App.failed


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: App) -> None:
        super().__init__(address, Handler)
        self.app = app

    def handle_error(self, request: Any, client_address: Any) -> None:
        # HAProxy's httpchk hangs up once it has read the status line: not worth a traceback every few seconds.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write(__doc__ or "")
        return 2
    with open(argv[1]) as fh:
        cfg = json.load(fh)
    app = App(cfg)
    servers = []
    for name, port in sorted(cfg["ports"].items(), key=lambda kv: kv[1]):
        try:
            servers.append(Server((cfg["listen"], port), app))
        except OSError as exc:
            log(f"cannot listen on {cfg['listen']}:{port} ({name}): {exc}")
            return 1
    app.publisher.start()
    threads = [threading.Thread(target=s.serve_forever, name=f"http-{s.server_address[1]}") for s in servers]
    for t in threads:
        t.start()
    log(f"{cfg['node']}: listening on {cfg['listen']} ports {', '.join(str(s.server_address[1]) for s in servers)}")
    for t in threads:
        t.join()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
