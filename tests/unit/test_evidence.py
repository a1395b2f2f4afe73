"""lab/evidence.py and its parts: stages and logs collected through the real node scripts (run by a local `sh`
standing in for a node), secrets planted in every kind of input found in none of the outputs, the manifest's
entries, the role filter, the marker protocol and the log cut."""

from __future__ import annotations

import bz2
import json
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lab import evidence
from lab import evidence_commands as ec
from lab import evidence_logs as el
from lab.providers.base import Result
from lab.report import Report
from lab.scenario import load_scenario
from lab.scrub import Scrubber, Secret, of_state_dir
from provision.secrets import load_or_create

pytestmark = pytest.mark.unit

FAKE_PEM = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "QyNTUxOQAAACDmZmFrZS1rZXktZm9yLXRoZS1oYWxhYi11bml0LXRlc3RzLW9ubHktMTIz\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)


class LocalProvider:
    """A provider whose every node is this machine's `sh`: the scripts lab/evidence*.py send run for real."""

    name = "netns"

    def __init__(self, state_dir: Path, down: tuple[str, ...] = ()) -> None:
        self.state_dir, self.down = state_dir, down
        self.calls: list[str] = []

    def is_running(self, node: str) -> bool:
        return node not in self.down

    def run(self, node: str, cmd: str, *, timeout: float = 60.0, **_: Any) -> Result:
        self.calls.append(node)
        p = subprocess.run(["sh", "-c", cmd], capture_output=True, timeout=timeout)
        return Result(node, cmd, p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))


@dataclass
class FakeLab:
    """What lab/evidence.py reads of a Lab."""

    run_dir: Path
    provider: LocalProvider
    started: float
    scenario: Any = field(default_factory=lambda: load_scenario("active-passive"))
    profile: str = "guide"
    provider_name: str = "netns"
    provider_reason: str = "LAB_PROVIDER=netns"
    seed: int = 7
    report: Report = field(default_factory=lambda: Report("active-passive", "netns", "guide", 0.0, 0.0))

    @property
    def opts(self) -> Any:
        return self.scenario.options(self.profile)

    @property
    def ctx(self) -> Any:
        return SimpleNamespace(secrets=load_or_create(self.provider.state_dir), drbd=False)

    @property
    def playbook(self) -> Any:
        return SimpleNamespace(PACKAGES=["coreutils"])


def every_form(secrets: list[Secret]) -> bytes:
    return b"\n".join(form for s in secrets for form in s.forms)


def assert_no_secret(root: Path, secrets: list[Secret]) -> int:
    files = [p for p in root.rglob("*") if p.is_file()]
    for p in files:
        data = p.read_bytes()
        for s in secrets:
            for form in s.forms:
                assert form not in data, f"{s.name} in {p.relative_to(root)}"
    return len(files)


@pytest.fixture
def planted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[FakeLab, list[Secret], Path]:
    """A lab whose every kind of collected input holds every form of every secret: command output and stderr, a
    config file, log lines (in and before the window), a scheduler input, the schedule file."""
    monkeypatch.setenv("HALAB_STATE_DIR", str(tmp_path / "no-state"))  # no lab of this machine is seen or touched
    state = tmp_path / "state"
    load_or_create(state)
    (state / "fence").mkdir()
    (state / "fence" / "client_key").write_text(FAKE_PEM)
    secrets = of_state_dir(state)
    payload = every_form(secrets)
    src = tmp_path / "node"
    (src / "log").mkdir(parents=True)
    (src / "pengine").mkdir()
    (src / "out.txt").write_bytes(b"crm_mon says:\n" + payload + b"\n")
    (src / "corosync.conf").write_bytes(b"totem {\n  # " + payload + b"\n}\n")
    start = time.time() - 60
    old = datetime.fromtimestamp(start - 3600, UTC).strftime("%Y-%m-%d %H:%M:%S")
    new = datetime.fromtimestamp(start + 30, UTC).strftime("%b %d %H:%M:%S.123")
    (src / "log" / "daemon.log").write_bytes(
        f"{old} 0 [Note] before the run\n".encode()
        + payload
        + f"\n{new} node1 corosync in the run: ".encode()
        + payload
    )
    (src / "pengine" / "pe-input-7.bz2").write_bytes(bz2.compress(b'<cib><nvpair value="' + payload + b'"/></cib>'))
    schedule = src / "sched.yaml"
    schedule.write_bytes(b"description: x\nsteps: []\n# " + payload + b"\n")
    commands = [
        ec.Command("out", f"cat {src}/out.txt", frozenset({"pacemaker"})),
        ec.Command("corosync.conf", f"cat {src}/corosync.conf", frozenset({"pacemaker"}), timeout_s=0.0),
        ec.Command("err", f"cat {src}/out.txt >&2; exit 3", frozenset({"pacemaker"})),
        ec.Command("elsewhere", "true", frozenset({"pacemaker"}), when="false", why="its service is not here"),
    ]
    monkeypatch.setattr(ec, "for_node", lambda lab, node, first, end: [] if node == "client" else commands)
    monkeypatch.setattr(el, "globs", lambda roles, drbd: [f"{src}/log/*"] if "pacemaker" in roles else [])
    monkeypatch.setattr(el, "PENGINE", str(src / "pengine"))
    lab = FakeLab(tmp_path / "reports" / "active-passive" / "20260101T000000Z", LocalProvider(state), start)
    lab.report.notes.append(f"schedule {schedule} (x), seed 7")
    return lab, secrets, src


def test_secrets_planted_in_every_kind_of_input_reach_no_output(planted: tuple[FakeLab, list[Secret], Path]) -> None:
    lab, secrets, _ = planted
    evidence.snapshot(lab, "start")  # type: ignore[arg-type]
    evidence.snapshot(lab, "after-crash")  # type: ignore[arg-type]
    evidence.end(lab)  # type: ignore[arg-type]
    assert assert_no_secret(lab.run_dir, secrets) > 10
    m = evidence.load(lab.run_dir)
    assert m is not None and not m["errors"], m and m["errors"]
    kinds = {f["kind"] for f in m["files"]}
    assert {"command", "log", "pe", "schedule", "scenario", "profile", "provider", "faults"} <= kinds
    assert set(m["redactions"]) == {s.name for s in secrets}  # every secret was met, and replaced
    out = (lab.run_dir / "evidence/stages/start/node1/out.txt").read_text()
    assert "«redacted:mysql_password»" in out and "«redacted:corosync_authkey»" in out
    assert "«redacted:private_key:fence/client_key»" in out


def test_a_collected_run_packs_into_an_archive_without_them(planted: tuple[FakeLab, list[Secret], Path]) -> None:
    import tarfile

    from lab import bundle

    lab, secrets, _ = planted
    evidence.snapshot(lab, "start")  # type: ignore[arg-type]
    evidence.end(lab)  # type: ignore[arg-type]
    packed = bundle.pack(lab.run_dir)
    assert packed.grepped and packed.secrets_from == [str(lab.provider.state_dir)]
    assert packed.redacted_at_pack == {}  # the collection had scrubbed everything already
    with tarfile.open(packed.path, "r:gz") as tar:
        for member in tar:
            fh = tar.extractfile(member) if member.isfile() else None
            data = fh.read() if fh else b""
            assert not [s.name for s in secrets for form in s.forms if form in data], member.name


def test_the_manifest_lists_stage_node_command_rc_and_time(planted: tuple[FakeLab, list[Secret], Path]) -> None:
    lab, _, src = planted
    evidence.snapshot(lab, "start")  # type: ignore[arg-type]
    evidence.end(lab)  # type: ignore[arg-type]
    m = evidence.load(lab.run_dir)
    assert m is not None
    assert [s["stage"] for s in m["stages"]] == ["start", "end"]
    assert all(isinstance(s["collect_s"], float) for s in m["stages"]) and "stage:end" in m["timings_s"]
    start = m["stages"][0]["nodes"]
    assert start["client"]["skipped_node"].startswith("no commands for its roles")
    assert start["node1"]["skipped"] == {"elsewhere": "its service is not here"}  # skipped, not run and failed
    err = next(f for f in m["files"] if f["path"] == "evidence/stages/start/node2/err.txt")
    assert err["rc"] == 3 and err["node"] == "node2" and err["stage"] == "start" and "cat" in err["command"]
    assert "«redacted:mysql_password»" in err["stderr"]
    ok = next(f for f in m["files"] if f["path"] == "evidence/stages/end/node1/out.txt")
    assert ok["rc"] == 0 and "stderr" not in ok
    log = next(f for f in m["files"] if f["kind"] == "log" and f["node"] == "node1")
    assert "lines before the run's start dropped" in log["cut"]  # the old line and its continuation lines
    kept = (lab.run_dir / log["path"]).read_text()
    assert "before the run" not in kept and "in the run" in kept
    pe = next(f for f in m["files"] if f["kind"] == "pe")
    assert pe["path"].endswith("pe-input-7.xml") and (lab.run_dir / pe["path"]).read_text().startswith("<cib>")
    assert m["schedule"]["seed"] == 7 and m["schedule"]["path"] == str(src / "sched.yaml")
    listed = {f["path"] for f in m["files"]}
    on_disk = {p.relative_to(lab.run_dir).as_posix() for p in lab.run_dir.rglob("*") if p.is_file()}
    assert on_disk - listed == {evidence.MANIFEST}


def test_a_second_start_is_a_no_op_and_a_repeated_stage_gets_a_number(
    planted: tuple[FakeLab, list[Secret], Path],
) -> None:
    lab, _, _ = planted
    evidence.snapshot(lab, "start")  # type: ignore[arg-type]
    calls = len(lab.provider.calls)
    evidence.snapshot(lab, "start")  # type: ignore[arg-type]
    assert len(lab.provider.calls) == calls
    for stage in ("after-x", "after-xy", "after-x", "after-x"):
        evidence.snapshot(lab, stage)  # type: ignore[arg-type]
    m = evidence.load(lab.run_dir)
    assert m is not None
    assert [s["stage"] for s in m["stages"]] == ["start", "after-x", "after-xy", "after-x-2", "after-x-3"]


def test_a_node_that_is_down_is_skipped_and_collection_goes_on(planted: tuple[FakeLab, list[Secret], Path]) -> None:
    lab, _, _ = planted
    lab.provider.down = ("node2",)
    rec = evidence.snapshot(lab, "after-crash")  # type: ignore[arg-type]
    assert rec["nodes"]["node2"]["skipped_node"].startswith("not running")
    assert (lab.run_dir / "evidence/stages/after-crash/node1/out.txt").exists()
    assert not (lab.run_dir / "evidence/stages/after-crash/node2").exists()


def test_an_error_is_recorded_not_raised(planted: tuple[FakeLab, list[Secret], Path], monkeypatch) -> None:
    lab, _, _ = planted

    def broken(*_: object, **__: object) -> list[ec.Command]:
        raise ValueError("boom")

    monkeypatch.setattr(ec, "for_node", broken)
    evidence.snapshot(lab, "start")  # type: ignore[arg-type]
    m = evidence.load(lab.run_dir)
    assert m is not None and "boom" in m["errors"][0] and "boom" in lab.report.notes[-1]


# ---------------------------------------------------------------------------------------------- commands by role
def lab_of(topology: str, drbd: bool = False) -> Any:
    return SimpleNamespace(
        scenario=load_scenario(topology),
        profile=None,
        playbook=SimpleNamespace(PACKAGES=["corosync"]),
        ctx=SimpleNamespace(drbd=drbd),
    )


def names(lab: Any, node: str, *, first: bool = False, end: bool = False) -> set[str]:
    return {c.name for c in ec.for_node(lab, node, first=first, end=end)}


def test_every_topology_has_a_playbook_and_evidence_commands() -> None:
    """A topology the loader accepts must be one the playbooks build and lab/evidence.py knows how to ask."""
    from lab.scenario import TOPOLOGIES
    from provision.playbook import PLAYBOOKS

    assert set(ec.TOPOLOGIES) == set(TOPOLOGIES) == set(PLAYBOOKS)


def test_quorum_commands_ask_every_cluster_node_its_cluster() -> None:
    lab = lab_of("quorum")
    assert names(lab, "client") == set()
    for node in lab.scenario.nodes_with_role("pacemaker"):
        every = names(lab, node.name)
        assert {"corosync.conf", "corosync-quorumtool", "corosync-cfgtool", "cibadmin", "crm_mon"} <= every
        assert "mounts" not in every and "mysql" not in every and "qdevice" not in every
    two = lab_of("qdevice")
    assert {"qdevice", "corosync-quorumtool"} <= names(two, "node1") and "qnetd" not in names(two, "node1")
    assert names(two, "arbiter") >= {"qnetd"} and "corosync-quorumtool" not in names(two, "arbiter")


def test_active_passive_commands_go_to_cluster_nodes_only() -> None:
    lab = lab_of("active-passive")
    assert names(lab, "client") == set()  # no corosync there: not run and failed, not sent at all
    every = names(lab, "node1")
    assert {"corosync.conf", "corosync-quorumtool", "corosync-cfgtool", "cibadmin", "crm_mon", "mounts"} <= every
    assert {"mysql", "rabbitmq-membership"} <= every and "drbd" not in every
    assert "packages" not in every and "rabbitmqctl-cluster_status" not in every  # not between the edges
    assert {"packages", "crm-config"} <= names(lab, "node1", first=True)
    assert "rabbitmqctl-cluster_status" not in names(lab, "node1", first=True)
    assert "rabbitmqctl-cluster_status" in names(lab, "node1", end=True)
    assert "drbd" in names(lab_of("active-passive", drbd=True), "node1")


def test_active_active_commands_follow_the_roles() -> None:
    lab = lab_of("active-active")
    ctl, lb = names(lab, "controller1", end=True), names(lab, "haproxy1", end=True)
    assert {"galera-wsrep", "grastate.dat", "rabbitmq-membership", "rabbitmqctl-cluster_status", "galera.cnf"} <= ctl
    assert not ctl & {"haproxy-show-stat", "keepalived-state", "corosync-quorumtool", "cibadmin"}
    assert {"haproxy-show-stat", "keepalived-state", "haproxy.cfg", "keepalived.conf"} <= lb
    assert not lb & {"galera-wsrep", "rabbitmq-membership", "corosync-quorumtool"}
    mine = [c for c in ec.for_node(lab, "controller2", first=False, end=False) if c.name == "rabbitmq-membership"]
    assert len(mine) == 1 and "rabbit@controller2" in mine[0].cmd  # each broker asked by its own name
    assert names(lab, "client") == set()


def test_the_marker_protocol_survives_any_output_and_a_cut_short_call() -> None:
    cmds = [
        ec.Command("a", "printf 'no newline'", frozenset()),
        ec.Command("b", "printf 'x\\n\\n'; echo oops >&2; exit 4", frozenset(), timeout_s=0.0),
        ec.Command("c", "true", frozenset(), when="false", why="nope"),
    ]
    text, nonce = ec.script(cmds)
    out = subprocess.run(["sh", "-c", text], capture_output=True, text=True, timeout=30).stdout
    a, b, c = ec.split(cmds, out, nonce)
    assert (a.rc, a.stdout) == (0, b"no newline")
    assert (b.rc, b.stdout, b.stderr) == (4, b"x\n\n", b"oops\n")
    assert c.rc is None and c.skipped == "nope"
    cut_short = ec.split(cmds, out[: len(out) // 2], nonce)  # the call timed out half-way
    assert cut_short[-1].rc is None and b"ended before" in cut_short[-1].stderr


# ---------------------------------------------------------------------------------------------- log timestamps
UTC0 = UTC
START = datetime(2026, 12, 1, 13, 30, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("line", "at"),
    [
        ("Dec 01 13:30:27 [59] node2 corosync notice  [MAIN  ] x", "2026-12-01T13:30:27"),
        ("Dec 01 13:30:28.035 node2 pacemakerd          [63] (crm_log_init) info: x", "2026-12-01T13:30:28.035"),
        ("2026-12-01 13:30:42.688739+00:00 [notice] <0.223.0> x", "2026-12-01T13:30:42.688739"),
        ("2026-12-01 13:30:39 0 [Note] WSREP: x", "2026-12-01T13:30:39"),
        ("261201 13:30:39 mysqld_safe Starting mariadbd daemon", "2026-12-01T13:30:39"),
        ("Tue Dec  1 13:30:39 2026: (VI_1) Entering MASTER STATE", "2026-12-01T13:30:39"),
        (
            "10.0.0.20:5123 [01/Dec/2026:13:31:02.500] galera_cluster galera_cluster/controller1 1/0/5",
            "2026-12-01T13:31:02.5",
        ),
    ],
)
def test_each_daemons_timestamp_is_read(line: str, at: str) -> None:
    want = datetime.fromisoformat(at).replace(tzinfo=UTC).timestamp()
    assert el.timestamp(line, UTC0, START, START + 60) == pytest.approx(want)


def test_times_without_zone_are_the_nodes_and_without_year_the_nearest() -> None:
    plus2 = timezone(timedelta(hours=2))
    assert el.timestamp("2026-12-01 15:30:00 0 [Note] x", plus2, START, START) == START
    jan = datetime(2027, 1, 1, 0, 0, 5, tzinfo=UTC).timestamp()
    assert el.timestamp("Dec 31 23:59:59 n corosync x", UTC0, jan - 60, jan) == jan - 6  # last year's December
    dec = datetime(2026, 12, 31, 23, 59, 0, tzinfo=UTC).timestamp()
    assert el.timestamp("Jan 01 00:00:30 n corosync x", UTC0, dec, dec + 120) == dec + 90  # into the new year
    assert el.timestamp("no time here", UTC0, START, START) is None
    assert el.timestamp("Foo 01 13:30:00 not a month", UTC0, START, START) is None


def test_the_cut_keeps_the_window_and_says_how() -> None:
    old, new = "Dec 01 13:29:00 n corosync old\n", "Dec 01 13:30:05 n corosync new\n"
    text, how = el.cut(old + "  continued\n" + new + "  more\n", START, 0, START + 60)
    assert text == new + "  more\n" and how.startswith("2 of 4 lines")
    text, how = el.cut("banner\n" + new, START, 0, START + 60)  # nothing shows the banner is older: kept
    assert text == "banner\n" + new and how == "nothing before the run's start"
    assert el.cut("no stamps\n", START, 0, START) == ("no stamps\n", el.cut("x", 0, 0, 0)[1])
    assert "whole file" in el.cut("no stamps\n", START, 0, START)[1]
    assert el.cut(old, START, 0, START)[0] == ""
    in_second = "Dec 01 13:29:59 n corosync same second\n"  # one-second stamps: the start's second is in
    assert el.cut(old + in_second, START - 0.5, 0, START)[0] == in_second


def test_logs_listing_parses_files_old_ones_and_pe_inputs() -> None:
    import base64

    def b64(s: bytes) -> str:
        return base64.b64encode(s).decode()

    out = (
        "tz -0130\n"
        f"file log 5 1700000000 {b64(b'/var/log/x.log')}\n{b64(b'hello')}\n"
        f"old 1600000000 {b64(b'/var/log/old.log')}\n"
        f"file pe 10 1700000001 {b64(b'/var/lib/pacemaker/pengine/pe-input-1.bz2')}\n{b64(bz2.compress(b'<cib/>'))}\n"
        f"file log 0 1700000002 {b64(b'/var/log/empty.log')}\n\n"
    )
    tz, files = el.parse(out)
    assert tz == -(3600 + 1800)
    assert [(f.kind, f.path, f.data) for f in files] == [
        ("log", "/var/log/x.log", b"hello"),
        ("old", "/var/log/old.log", b""),
        ("pe", "/var/lib/pacemaker/pengine/pe-input-1.bz2", b"<cib/>"),
        ("log", "/var/log/empty.log", b""),
    ]


def test_log_globs_come_from_provision_logs_by_role() -> None:
    from provision import logs

    assert el.globs(("pacemaker", "mysql", "rabbitmq"), False) == [
        logs.LOGS["corosync"],
        logs.LOGS["pacemaker"],
        logs.LOGS["mysql"],
        logs.LOGS["rabbitmq"],
    ]
    assert logs.LOGS["drbd"] in el.globs(("pacemaker",), True)
    assert el.globs(("galera", "api"), False) == [
        logs.LOGS["galera"],
        logs.LOGS["clustercheck"],
        logs.LOGS["api"],
        logs.LOGS["keystone"],  # OpenStack runs on the api nodes
        logs.LOGS["glance"],
        logs.LOGS["cinder"],
        logs.LOGS["neutron"],
        logs.LOGS["ceilometer"],
    ]
    assert el.globs(("client",), False) == []


def test_scrubbed_manifest_is_json_and_names_no_secret(planted: tuple[FakeLab, list[Secret], Path]) -> None:
    lab, secrets, _ = planted
    evidence.end(lab)  # type: ignore[arg-type]
    raw = evidence.manifest_path(lab.run_dir).read_bytes()
    assert Scrubber(secrets).find(raw) == []
    m = json.loads(raw)
    assert m["secrets_scrubbed"] == sorted(s.name for s in secrets) and m["state_dir"] == str(lab.provider.state_dir)
