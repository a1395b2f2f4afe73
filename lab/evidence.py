"""Every run leaves its evidence in its run directory (lab.run_dir), listed in bundle.json; `halab bundle` packs it.

Hooks (lab/session.py and lab/trial.py call them):
  snapshot(lab, "start")            after provisioning, and as a trial starts (a second "start" in one run is a
                                    no-op: a run on a lab provisioned earlier, `halab run` or a hand-run, gets one)
  snapshot(lab, f"after-{trial}")   as each trial ends (Trial.__exit__: a failed trial leaves one too)
  end(lab)                          in Lab.write_report: snapshot(lab, "end"), then finish(lab)

A snapshot asks every running node, in parallel and in one provider call each, what its roles have to say
(lab/evidence_commands.py: membership, quorum, links, the CIB, crm_mon, shared storage, Galera, RabbitMQ, HAProxy,
keepalived), at the run's first stage and at "end" also its package versions and configuration files. `finish`
adds what the run was (scenario and profile as run, the options the profile resolved to, the schedule and seed,
the provider and its versions, every fault in order), the daemons' logs cut to the run's window and the scheduler's
inputs (lab/evidence_logs.py), and the listing of every file. Everything collected passes the lab's scrubber
(lab/scrub.py) before it is written; nothing here raises into the run: a failure is recorded in the manifest."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab import evidence_commands as ec
from lab import evidence_logs as el
from lab.report import iso_utc
from lab.scrub import Scrubber, of_secrets, of_state_dir

if TYPE_CHECKING:
    from lab.session import Lab

REPO = Path(__file__).resolve().parent.parent
MANIFEST = "bundle.json"
EVIDENCE = "evidence"
FORMAT = 1
STDERR_CHARS = 4000  # of a command's stderr, in the manifest
LOGS_S = 120.0  # one node's logs in one call: a few MiB over a pipe or SSH
HOST_S = 10.0  # a host-side version query
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # rabbitmqctl's bold headings, on a pipe too
# What the provider itself runs on the host, whose versions the bundle records.
HOST_PACKAGES = {
    "netns": ["iproute2", "nftables", "util-linux", "mount", "tini", "xfsprogs"],
    "libvirt": [
        *("qemu-system-x86", "libvirt-daemon", "libvirt-clients", "vagrant", "vagrant-libvirt", "python3-libvirt")
    ],
}
HOST_VERSIONS = {"libvirt": ["qemu-system-x86_64 --version", "libvirtd --version", "virsh --version"]}
SCHEDULE_NOTE = re.compile(r"^schedule (\S+) \((.*)\), seed (-?\d+)$")


# ---------------------------------------------------------------------------------------------- the manifest
def manifest_path(run_dir: Path) -> Path:
    return run_dir / MANIFEST


def load(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads(manifest_path(run_dir).read_text())
    except (OSError, ValueError):
        return None


def save(run_dir: Path, m: dict[str, Any]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = manifest_path(run_dir).with_suffix(".tmp")
    tmp.write_text(json.dumps(m, indent=2) + "\n")
    tmp.replace(manifest_path(run_dir))  # a killed run leaves the previous manifest, never half of one


def _manifest(lab: Lab) -> dict[str, Any]:
    m = load(lab.run_dir)
    if m is not None:
        return m
    return {
        "format": FORMAT,
        "lab": lab.scenario.name,
        "scenario": str(Path(lab.scenario.path).resolve()),
        "topology": lab.scenario.topology,
        "provider": lab.provider_name,
        "profile": lab.profile,
        "seed": lab.seed,
        "state_dir": str(lab.provider.state_dir),  # where `halab bundle` finds the secrets to grep for
        "window": {"start": iso_utc(lab.started), "start_epoch": lab.started, "end": None},
        "stages": [],
        "files": [],
        "timings_s": {},
        "redactions": {},
        "errors": [],
    }


def _scrubber(lab: Lab) -> Scrubber:
    return Scrubber([*of_secrets(lab.ctx.secrets), *of_state_dir(lab.provider.state_dir)])


class _Writer:
    """Writes scrubbed files under the run dir and lists them in the manifest."""

    def __init__(self, lab: Lab, m: dict[str, Any]) -> None:
        self.run_dir, self.m, self.scrubber = lab.run_dir, m, _scrubber(lab)

    def text(self, data: bytes) -> str:
        return ANSI.sub("", self.scrubber.scrub_bytes(data).decode(errors="replace"))

    def write(self, rel: str, content: str, **entry: Any) -> None:
        path = self.run_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        self.m["files"] = [f for f in self.m["files"] if f["path"] != rel]
        self.m["files"].append({"path": rel, "bytes": path.stat().st_size, **entry})

    def close(self) -> None:
        red = self.m["redactions"]
        for name, n in self.scrubber.counts.items():
            red[name] = red.get(name, 0) + n
        self.m["secrets_scrubbed"] = self.scrubber.names  # names only
        save(self.run_dir, self.m)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "_"


def _error(lab: Lab, m: dict[str, Any], where: str, exc: BaseException) -> None:
    line = f"evidence {where}: {type(exc).__name__}: {str(exc).strip()[:300]}"
    m.setdefault("errors", []).append(line)
    lab.report.notes.append(line)


# ---------------------------------------------------------------------------------------------- stages
def snapshot(lab: Lab, stage: str) -> dict[str, Any]:
    """Every running node's state now, as `stage` ("start", "after-<trial>", "end"); returns its manifest record."""
    t0 = time.monotonic()
    m = _manifest(lab)
    names = [s["stage"] for s in m["stages"]]
    if stage == "start" and "start" in names:
        return next(s for s in m["stages"] if s["stage"] == "start")
    again = [n for n in names if n == stage or re.fullmatch(re.escape(stage) + r"-\d+", n)]
    label = f"{stage}-{len(again) + 1}" if again else stage
    first, last = not m["stages"], stage == "end"
    w = _Writer(lab, m)
    record: dict[str, Any] = {"stage": label, "at": iso_utc(time.time()), "first": first, "nodes": {}}
    try:
        if "static" not in m:
            _static(lab, w)
        nodes = list(lab.scenario.nodes)
        with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
            results = list(pool.map(lambda n: _ask(lab, n, first, last), nodes))
        for node, (outs, info) in zip(nodes, results, strict=True):
            record["nodes"][node] = info
            for o in outs:
                if o.skipped:
                    info.setdefault("skipped", {})[o.name] = o.skipped
                    continue
                entry: dict[str, Any] = {"kind": "command", "stage": label, "node": node, "command": o.cmd, "rc": o.rc}
                if o.stderr.strip():
                    entry["stderr"] = w.text(o.stderr)[-STDERR_CHARS:]
                w.write(f"{EVIDENCE}/stages/{_safe(label)}/{node}/{o.name}.txt", w.text(o.stdout), **entry)
    except Exception as exc:  # evidence never fails the run it documents
        _error(lab, m, f"stage {label}", exc)
    record["collect_s"] = round(time.monotonic() - t0, 3)
    m["stages"].append(record)
    m["timings_s"][f"stage:{label}"] = record["collect_s"]
    _charge(lab, m, record["collect_s"])
    w.close()
    return record


def _charge(lab: Lab, m: dict[str, Any], seconds: float) -> None:
    """What collecting cost the run in wall time (what it waited for), in the manifest and the report."""
    m["collect_s_total"] = round(m.get("collect_s_total", 0.0) + seconds, 3)
    lab.report.timings_s["evidence"] = round(m["collect_s_total"], 2)


def _ask(lab: Lab, node: str, first: bool, end: bool) -> tuple[list[ec.Output], dict[str, Any]]:
    """One node's commands in one provider call (run in a thread: no scrubbing or writing here)."""
    t0 = time.monotonic()
    roles = list(lab.scenario.nodes[node].roles)
    info: dict[str, Any] = {"roles": roles}
    cmds = ec.for_node(lab, node, first=first, end=end)
    if not cmds:
        info["skipped_node"] = f"no commands for its roles ({', '.join(roles)})"
        return [], info
    if not lab.provider.is_running(node):
        info["skipped_node"] = "not running (crashed or powered off)"
        return [], info
    text, nonce = ec.script(cmds)
    try:
        r = lab.provider.run(node, text, timeout=ec.timeout_of(cmds))
        outs = ec.split(cmds, r.stdout, nonce)
        if r.rc != 0:
            info["call"] = f"rc {r.rc}: {r.stderr.strip()[-500:]}"
    except Exception as exc:  # ProviderError, an SSH timeout...: this node's outputs lost, never the others'
        info["call"] = f"{type(exc).__name__}: {exc}"[:500]
        outs = [ec.Output(c.name, c.cmd, None, b"", str(exc).encode()) for c in cmds]
    info["collect_s"] = round(time.monotonic() - t0, 3)
    info["commands"] = len(cmds)
    return outs, info


# ---------------------------------------------------------------------------------------------- what the run was
def _host(cmd: str) -> dict[str, Any]:
    try:
        p = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=HOST_S)
    except subprocess.TimeoutExpired:
        return {"command": cmd, "rc": None, "error": f"timed out after {HOST_S:.0f}s"}
    out = {"command": cmd, "rc": p.returncode, "stdout": p.stdout.strip()}
    return out | ({"stderr": p.stderr.strip()[-500:]} if p.returncode else {})


def _static(lab: Lab, w: _Writer) -> None:
    """The scenario and profile as run, the provider and its versions: once per run."""
    t0 = time.monotonic()
    sc = Path(lab.scenario.path)
    w.write(f"{EVIDENCE}/run/scenario-{_safe(sc.name)}", w.text(sc.read_bytes()), kind="scenario", source=str(sc))
    profile = lab.scenario.profiles[lab.profile]
    w.write(
        f"{EVIDENCE}/run/profile.json",
        w.text(
            json.dumps(
                {
                    "profile": lab.profile,
                    "description": profile.description,
                    "overrides": dict(profile.overrides),
                    "options": dataclasses.asdict(lab.opts),
                },
                indent=2,
            ).encode()
        ),
        kind="profile",
    )
    pkgs = " ".join(HOST_PACKAGES.get(lab.provider_name, []))
    host = [_host("uname -r"), _host(f"dpkg-query -W -f='${{Package}} ${{Version}}\\n' {pkgs}")]
    host += [_host(c) for c in HOST_VERSIONS.get(lab.provider_name, [])]
    provider = {"name": lab.provider_name, "chosen": lab.provider_reason, "host": host}
    w.write(f"{EVIDENCE}/run/provider.json", w.text(json.dumps(provider, indent=2).encode()), kind="provider")
    w.m["static"] = True
    w.m["timings_s"]["static"] = round(time.monotonic() - t0, 3)


def _schedule(lab: Lab, w: _Writer) -> None:
    """The schedule that ran (play.run notes it) and the seed; the file itself when its path still reads."""
    path = getattr(lab, "schedule_path", None)
    found: dict[str, Any] = {"seed": lab.seed}
    for note in lab.report.notes:
        if hit := SCHEDULE_NOTE.match(note):
            path = path or hit.group(1)
            found |= {"note": note, "description": hit.group(2), "seed": int(hit.group(3))}
    if path is None:
        w.m["schedule"] = None
        return
    file = Path(path)
    if not file.is_absolute() and not file.exists():  # noted relative to the cwd of `halab run`: the checkout's?
        file = REPO / file
    found["path"] = str(path)
    try:
        w.write(f"{EVIDENCE}/run/schedule-{_safe(file.name)}", w.text(file.read_bytes()), kind="schedule")
    except OSError as exc:
        found["file"] = f"not collected: {exc.strerror}"
    w.m["schedule"] = found


def _faults(lab: Lab, w: _Writer) -> None:
    """Every fault and heal of the run, in order, from each trial's nemesis.jsonl (those stay where they are)."""
    ops = []
    for f in sorted((lab.run_dir / "trials").glob("*/nemesis.jsonl")):
        for line in f.read_text().splitlines():
            try:
                op = json.loads(line)
                ops.append({"trial": f.parent.name, "at": iso_utc(float(op["time"])), **op})
            except (ValueError, KeyError):
                continue  # a partial last line of a killed run
    ops.sort(key=lambda o: o["time"])
    w.write(f"{EVIDENCE}/run/faults.json", w.text(json.dumps(ops, indent=2).encode()), kind="faults")


# ---------------------------------------------------------------------------------------------- the end
def end(lab: Lab) -> Path:
    """The "end" stage and finish, what Lab.write_report calls; the logs are fetched while the stage runs (its
    `rabbitmqctl` is the longest call of the run's evidence)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        logs = pool.submit(_fetch_logs, lab)
        snapshot(lab, "end")
        try:
            fetched = logs.result()
        except Exception:  # finish fetches them again, and records what goes wrong there
            fetched = None
        return finish(lab, logs=fetched)


_Fetched = dict[str, tuple[int, list[el.Fetched]] | str]


def finish(lab: Lab, *, logs: _Fetched | None = None) -> Path:
    """Logs, the run's description, the faults, the listing of every file; returns the manifest's path."""
    t_finish = time.monotonic()
    m = _manifest(lab)
    w = _Writer(lab, m)
    try:
        if "static" not in m:
            _static(lab, w)
        _schedule(lab, w)
        _faults(lab, w)
        t0 = time.monotonic()
        _write_logs(lab, w, logs if logs is not None else _fetch_logs(lab))
        m["timings_s"]["logs"] = round(time.monotonic() - t0, 3)
    except Exception as exc:
        _error(lab, m, "finish", exc)
    m["window"]["end"] = iso_utc(time.time())
    list_run_files(lab.run_dir, m)
    m["timings_s"]["finish"] = round(time.monotonic() - t_finish, 3)
    _charge(lab, m, m["timings_s"]["finish"])
    w.close()
    return manifest_path(lab.run_dir)


def _fetch_logs(lab: Lab) -> _Fetched:
    """Every running node's daemon logs and scheduler inputs of the window, one call per node, in parallel."""
    t0 = time.monotonic()
    drbd = lab.ctx.drbd

    def fetch(node: str) -> tuple[int, list[el.Fetched]] | str:
        if not lab.provider.is_running(node):
            return "not running at the end"
        roles = lab.scenario.nodes[node].roles
        patterns = el.globs(roles, drbd)
        if not patterns:
            return "no daemon logs for its roles"
        try:
            r = lab.provider.run(node, el.script(patterns, lab.started, "pacemaker" in roles), timeout=LOGS_S)
            return el.parse(r.stdout) if r.ok else f"rc {r.rc}: {r.stderr.strip()[-500:]}"
        except Exception as exc:  # one node's logs lost, not the others'
            return f"{type(exc).__name__}: {exc}"[:500]

    nodes = list(lab.scenario.nodes)
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        got = dict(zip(nodes, pool.map(fetch, nodes), strict=True))
    got["_fetch_s"] = f"{time.monotonic() - t0:.3f}"
    return got


def _write_logs(lab: Lab, w: _Writer, fetched: _Fetched) -> None:
    now = time.time()
    w.m["timings_s"]["logs:fetch"] = float(str(fetched.pop("_fetch_s", "0")))
    w.m["logs"] = {}
    for node, got in fetched.items():
        if isinstance(got, str):
            w.m["logs"][node] = got
            continue
        tz, files = got
        w.m["logs"][node] = {"tz_offset_s": tz, "unchanged_in_window": [f.path for f in files if f.kind == "old"]}
        for f in files:
            if f.kind == "pe-raw":  # compressed bytes the scrubber cannot read: never written
                w.m["logs"][node].setdefault("not_collected", []).append(f"{f.path}: not a whole bz2 file when read")
            if f.kind in ("old", "pe-raw"):
                continue
            rel = f"{EVIDENCE}/logs/{node}/{f.path.lstrip('/')}"
            entry: dict[str, Any] = {"kind": f.kind, "stage": "end", "node": node, "source": f.path, "rc": 0}
            if f.kind == "log":
                text, entry["cut"] = el.cut(w.text(f.data), lab.started, tz, now)
            else:  # the scheduler's inputs: picked by mtime, stored as the XML they hold
                text, entry["cut"] = w.text(f.data), "selected by mtime in the window"
                rel = rel.removesuffix(".bz2") + ".xml"
            if f.truncated:
                entry["cut"] += f"; the file had {f.size} bytes, only its last {el.MAX_FILE_BYTES} were read"
            w.write(rel, text, **entry)


def list_run_files(run_dir: Path, m: dict[str, Any]) -> None:
    """Every file of the run dir in the manifest: the evidence's with their entries, the rest (report, trials'
    histories, JUnit XML...) as `run` files with their sizes."""
    listed = {f["path"]: f for f in m["files"]}
    for p in sorted(run_dir.rglob("*")):
        rel = p.relative_to(run_dir).as_posix()
        if not p.is_file() or p.is_symlink() or rel in (MANIFEST, f"{MANIFEST[:-5]}.tmp"):
            continue
        if rel in listed:
            listed[rel]["bytes"] = p.stat().st_size
        else:
            m["files"].append({"path": rel, "bytes": p.stat().st_size, "kind": "run"})
    m["files"] = [f for f in m["files"] if (run_dir / f["path"]).is_file()]
