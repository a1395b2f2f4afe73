"""Which labs are up: one small JSON file per lab and provider under the state root, written by `up` and
`provision`, removed by `down`. Later `halab` commands find a lab's scenario, provider and profile here, so
`halab status mylab` needs no flags; `halab list` reads them all."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from lab.scenario import Scenario


def root() -> Path:
    # the providers' own state root (HALAB_STATE_DIR), not /tmp: node namespaces hide /tmp
    return Path(os.environ.get("HALAB_STATE_DIR", "/var/tmp/halab")) / "labs"


@dataclass(frozen=True)
class Entry:
    lab: str
    scenario: str  # absolute path of the scenario file
    topology: str
    provider: str
    profile: str
    since: float
    provisioned: bool
    nodes: list[str]


def _file(lab: str, provider: str) -> Path:
    return root() / f"{lab}.{provider}.json"


def record(scenario: Scenario, provider: str, profile: str, *, provisioned: bool = False, fresh: bool = False) -> Entry:
    """`fresh`: the lab was (re)built just now: nothing of an earlier provisioning survives."""
    old = None if fresh else load(scenario.name, provider)
    since = old.since if old else time.time()
    entry = Entry(
        scenario.name,
        str(Path(scenario.path).resolve()),
        scenario.topology,
        provider,
        profile,
        since,
        provisioned or bool(old and old.provisioned and old.profile == profile),
        list(scenario.nodes),
    )
    path = _file(scenario.name, provider)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(entry), indent=2))
    tmp.replace(path)
    return entry


def load(lab: str, provider: str) -> Entry | None:
    path = _file(lab, provider)
    try:
        return Entry(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def forget(lab: str, provider: str) -> None:
    _file(lab, provider).unlink(missing_ok=True)


def entries() -> list[Entry]:
    out = []
    for p in sorted(root().glob("*.json")):
        try:
            out.append(Entry(**json.loads(p.read_text())))
        except (OSError, ValueError, TypeError):
            continue
    return out


def find(lab: str) -> list[Entry]:
    return [e for e in entries() if e.lab == lab]
