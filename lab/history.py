"""A history of client operations and observations, as Jepsen records one.

Workloads append `invoke` then `ok`/`fail`/`info` ops; observers append `info` ops whose
`f` names what was observed (`vip-holders`, `mounts`). Checkers are pure functions of a
History. Times are Unix epoch seconds (float, `time.time()`) taken on the lab host, so ops
from different client processes and the harness's fault log share one clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

INVOKE, OK, FAIL, INFO = "invoke", "ok", "fail", "info"
# The ops whose acknowledgement means "the service worked": a client's work. Probes (a TCP connect: uwsgi accepts
# before Keystone's app has loaded) and the consumer's pauses are judged apart.
WORK_FS = ("write", "publish", "issue", "validate", "upload", "list", "download")


@dataclass(frozen=True)
class Op:
    time: float  # epoch seconds when the op was recorded
    process: str  # which client or observer: "mysql-writer", "vip-observer", ...
    type: str  # invoke | ok | fail | info
    f: str  # write, read, publish, consume, connect, vip-holders, mounts, fault, heal
    value: Any = None
    service: str | None = None  # "mysql", "rabbitmq", ... for workload ops
    error: str | None = None

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None}, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Op:
        return cls(
            time=float(d["time"]),
            process=d["process"],
            type=d["type"],
            f=d["f"],
            value=d.get("value"),
            service=d.get("service"),
            error=d.get("error"),
        )


@dataclass
class History:
    ops: list[Op] = field(default_factory=list)

    def append(self, op: Op) -> None:
        self.ops.append(op)

    def extend(self, ops: Iterable[Op]) -> None:
        self.ops.extend(ops)

    def __iter__(self) -> Iterator[Op]:
        return iter(self.ops)

    def __len__(self) -> int:
        return len(self.ops)

    def sorted(self) -> History:
        return History(sorted(self.ops, key=lambda o: o.time))

    def select(
        self,
        *,
        f: str | Iterable[str] | None = None,
        type: str | Iterable[str] | None = None,
        service: str | None = None,
        process: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[Op]:
        fs = {f} if isinstance(f, str) else set(f) if f is not None else None
        types = {type} if isinstance(type, str) else set(type) if type is not None else None
        return [
            o
            for o in self.ops
            if (fs is None or o.f in fs)
            and (types is None or o.type in types)
            and (service is None or o.service == service)
            and (process is None or o.process == process)
            and (since is None or o.time >= since)
            and (until is None or o.time <= until)
        ]

    def dump(self, path: Path) -> None:
        path.write_text("".join(o.to_json() + "\n" for o in self.ops))

    @classmethod
    def load(cls, *paths: Path) -> History:
        ops: list[Op] = []
        for p in paths:
            if not p.exists():
                continue
            for line in p.read_text().splitlines():
                # A client killed mid-write leaves a partial last line: skip it, keep the rest.
                try:
                    ops.append(Op.from_dict(json.loads(line)))
                except (json.JSONDecodeError, KeyError):
                    continue
        return cls(ops).sorted()


class JsonlRecorder:
    """Appends ops to a JSONL file, flushed per op so a killed client loses at most one line."""

    def __init__(self, path: Path, process: str) -> None:
        self.path = path
        self.process = process
        self._fh = path.open("a", buffering=1)

    def record(
        self,
        type: str,
        f: str,
        value: Any = None,
        *,
        service: str | None = None,
        error: str | None = None,
        time: float | None = None,
    ) -> Op:
        import time as _time

        op = Op(_time.time() if time is None else time, self.process, type, f, value, service, error)
        self._fh.write(op.to_json() + "\n")
        return op

    def close(self) -> None:
        self._fh.close()
