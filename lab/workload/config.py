"""The workload's configuration: written 0600 by the harness (it carries passwords), read by the runner."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

# The trial creates this file in the workload's out_dir (its trial directory) to pause the AMQP consumer: from a
# little before its first fault on, confirmed messages stay queued, and the drain after recovery must find them.
PAUSE_FLAG = "consumer-paused"
# How long the consumer waits for a delivery before it looks at the flag (and `stop`) again.
CONSUME_POLL_S = 0.2


@dataclass(frozen=True)
class Endpoint:
    service: str  # the label the client's ops carry in the history
    host: str
    port: int
    user: str = ""
    password: str = ""
    hosts: list[str] = field(default_factory=list)  # several brokers (guide ch. 7 rabbit_hosts); else `host`


@dataclass(frozen=True)
class WorkloadConfig:
    out_dir: str
    run_id: int  # ids of rows/messages start at run_id * 1_000_000, so runs never collide
    sql: Endpoint | None = None  # a writer, one row per op, through a VIP
    amqp: Endpoint | None = None  # a publisher with confirms and a consumer
    http: Endpoint | None = None  # an API writer: each 200 means the row is in `api_table`
    cache: Endpoint | None = None  # a memcached client over every server in `hosts`
    identity: Endpoint | None = None  # a Keystone client: issues tokens, validates the run's first one
    image: Endpoint | None = None  # a Glance client (its token from `identity`): uploads, lists, downloads an image
    probes: list[Endpoint] = field(default_factory=list)
    interval_s: float = 0.05  # between a client's ops; the VIP probe's period, at most 100 ms
    op_timeout_s: float = 1.0
    api_table: str = "api_writes"
    # the queue the API stand-in publishes each written row to before its 200 (nothing consumes it): drained after
    # the run, every acknowledged API write must be there; "" when the API publishes nothing
    api_queue: str = ""
    queue_type: str = "classic"  # or "quorum" (RabbitMQ's recommendation; the hardened profile)
    # confirmed messages that must sit unconsumed in the queue when the first fault is applied (0: no pause)
    backlog: int = 50

    @property
    def stall_s(self) -> float:
        """An acknowledged op slower than this was a stall of its service, not a healthy op: half a connect timeout
        (ops take milliseconds here; a SYN lost to a moving VIP comes back after TCP's 1 s retransmit)."""
        return self.op_timeout_s / 2

    @property
    def max_op_s(self) -> float:
        """The longest a client waits for one op: a connect (op_timeout_s), then a read or write timeout of twice
        op_timeout_s (sql.connect, amqp.channel, http.writer)."""
        return 3 * self.op_timeout_s

    @property
    def pause_flag(self) -> Path:
        return Path(self.out_dir) / PAUSE_FLAG

    @property
    def pause_s(self) -> float:
        """The longest the consumer takes to pause once the flag exists: one poll for a delivery, then closing its
        connection (at most one op)."""
        return CONSUME_POLL_S + self.max_op_s

    @property
    def backlog_s(self) -> float:
        """The longest a healthy publisher takes to queue `backlog` confirmed messages behind a paused consumer:
        each publish waits an interval and is confirmed within stall_s (a slower one is an outage)."""
        return self.backlog * (self.interval_s + self.stall_s)

    @property
    def queue(self) -> str:
        return f"halab-{self.run_id}"

    @property
    def first_id(self) -> int:
        return self.run_id * 1_000_000

    def write(self, path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(self), fh)

    @classmethod
    def read(cls, path: Path) -> WorkloadConfig:
        d = json.loads(Path(path).read_text())
        ep = lambda v: Endpoint(**v) if v else None  # noqa: E731
        return cls(
            out_dir=d["out_dir"],
            run_id=d["run_id"],
            sql=ep(d.get("sql")),
            amqp=ep(d.get("amqp")),
            http=ep(d.get("http")),
            cache=ep(d.get("cache")),
            identity=ep(d.get("identity")),
            image=ep(d.get("image")),
            probes=[Endpoint(**p) for p in d.get("probes", [])],
            interval_s=d.get("interval_s", 0.05),
            op_timeout_s=d.get("op_timeout_s", 1.0),
            api_table=d.get("api_table", "api_writes"),
            api_queue=d.get("api_queue", ""),
            queue_type=d.get("queue_type", "classic"),
            backlog=d.get("backlog", 50),
        )
