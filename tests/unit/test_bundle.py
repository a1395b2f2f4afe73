"""lab/bundle.py and `halab bundle`: a run directory packed into one tar.gz in which no form of any of the lab's
secrets is left (the archive read back and every decompressed member grepped), RUN resolved as a path or a lab's
latest run, and every failure one line with exit code 2."""

from __future__ import annotations

import bz2
import json
import tarfile
from pathlib import Path

import pytest

from lab import bundle
from lab.cli import cli, main
from lab.scrub import Scrubber, Secret, of_state_dir
from provision.secrets import load_or_create

pytestmark = pytest.mark.unit

LAB = "mylab"


@pytest.fixture(autouse=True)
def private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HALAB_STATE_DIR", str(tmp_path / "state"))  # no lab of this machine is seen or touched
    monkeypatch.setenv("HALAB_REPORTS_DIR", str(tmp_path / "reports"))


def make_run(tmp_path: Path, run_id: str = "20260101T000000Z", *, manifest: bool = True) -> tuple[Path, list[Secret]]:
    """A run whose files (evidence and what other modules wrote) hold every form of every secret of its lab."""
    state = tmp_path / "state" / LAB
    s = load_or_create(state)
    secrets = of_state_dir(state)
    every = b"\n".join(f for sec in secrets for f in sec.forms)
    run = tmp_path / "reports" / LAB / run_id
    files = {
        "report.json": json.dumps({"notes": [f"cookie {s.erlang_cookie}"]}).encode(),
        "trials/crash/workload.json": json.dumps({"sql": {"password": s.mysql_password}}).encode(),
        "trials/crash/history.jsonl": b'{"f": "write", "value": "' + s.corosync_authkey_hex.encode() + b'"}\n',
        "trials/crash/nemesis.jsonl": b'{"f": "fault", "time": 1.0, "value": {"fault": "crash"}}\n',
        "evidence/stages/start/node1/out.txt": b"crm_mon:\n" + every,
        "evidence/stages/start/node1/corosync.conf.txt": b"totem {\n" + every + b"\n}\n",
        "evidence/logs/node1/var/log/corosync/corosync.log": b"Dec 01 13:30:27 raw " + s.corosync_authkey + b"\n",
        "evidence/logs/node1/var/lib/pacemaker/pengine/pe-input-1.xml": b'<cib value="' + every + b'"/>',
    }
    for rel, data in files.items():
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_bytes(data)
    if manifest:
        (run / "bundle.json").write_text(json.dumps({"format": 1, "lab": LAB, "state_dir": str(state), "files": []}))
    return run, secrets


def members(archive: Path) -> dict[str, bytes]:
    """Every file member, decompressed (tarfile reads the gzip stream)."""
    out = {}
    with tarfile.open(archive, "r:gz") as tar:
        for m in tar:
            fh = tar.extractfile(m) if m.isfile() else None
            if fh:
                out[m.name] = fh.read()
    return out


def test_the_packed_archive_holds_no_form_of_any_secret(tmp_path: Path) -> None:
    run, secrets = make_run(tmp_path)
    packed = bundle.pack(run)
    assert packed.path == run.with_name(run.name + ".tar.gz") and packed.grepped
    got = members(packed.path)
    assert len(got) == packed.members == 9  # eight files and the manifest
    for name, data in got.items():  # the grep, done here independently of lab/bundle.py's own
        for s in secrets:
            for form in s.forms:
                assert form not in data and form not in name.encode(), f"{s.name} in {name}"
    assert all(name.startswith(f"{LAB}-{run.name}/") for name in got)
    assert b"redacted:mysql_password" in got[f"{LAB}-{run.name}/trials/crash/workload.json"]
    m = json.loads(got[f"{LAB}-{run.name}/bundle.json"])
    assert m["pack"]["secrets_from"] == [str(tmp_path / "state" / LAB)] and m["pack"]["redacted"]
    assert {f["path"] for f in m["files"]} >= {"report.json", "trials/crash/history.jsonl"}  # every file listed
    assert not list(run.parent.glob("*.part")) and not (run / "bundle.json.tmp").exists()


def test_an_archive_that_still_holds_a_secret_is_refused_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, _ = make_run(tmp_path)
    monkeypatch.setattr(Scrubber, "scrub_bytes", lambda self, data: data)  # a form the scrubber would not know
    monkeypatch.setattr(Scrubber, "scrub", lambda self, text: text)
    with pytest.raises(bundle.BundleError, match="still holds secrets"):
        bundle.pack(run)
    assert list(run.parent.iterdir()) == [run]  # neither the archive nor its partial file is left


def test_a_compressed_file_in_the_run_is_grepped_inside_and_refused(tmp_path: Path) -> None:
    run, secrets = make_run(tmp_path)
    (run / "trials" / "crash" / "old.log.bz2").write_bytes(bz2.compress(secrets[0].forms[0]))  # no scrubber sees in
    with pytest.raises(bundle.BundleError, match=f"old.log.bz2: {secrets[0].name}"):
        bundle.pack(run)


def test_grep_names_the_member_and_the_secret_never_its_value(tmp_path: Path) -> None:
    run, secrets = make_run(tmp_path)
    archive = tmp_path / "raw.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(run / "trials" / "crash" / "workload.json", arcname="x/workload.json")
    leaks = bundle.grep(archive, Scrubber(secrets))
    assert leaks == ["x/workload.json: mysql_password"]


def test_without_the_labs_secrets_it_packs_and_says_it_did_not_grep(tmp_path: Path) -> None:
    run, _ = make_run(tmp_path)
    for f in (tmp_path / "state" / LAB).iterdir():
        f.unlink()
    packed = bundle.pack(run, tmp_path / "out" / "b.tar.gz")
    assert packed.path == tmp_path / "out" / "b.tar.gz" and not packed.grepped
    assert "not grepped" in packed.summary()


def test_a_run_without_evidence_is_packed_with_a_listing(tmp_path: Path) -> None:
    run, secrets = make_run(tmp_path, manifest=False)
    packed = bundle.pack(run)
    m = json.loads(members(packed.path)[f"{LAB}-{run.name}/bundle.json"])
    assert "no evidence was collected" in m["notes"][0] and len(m["files"]) == 8
    assert packed.grepped and bundle.grep(packed.path, Scrubber(secrets)) == []  # its lab's secrets, by its name


def test_run_resolves_a_path_a_labs_latest_run_or_says_what_to_pass(tmp_path: Path) -> None:
    old, _ = make_run(tmp_path, "20260101T000000Z")
    new, _ = make_run(tmp_path, "20260102T000000Z")
    (tmp_path / "reports" / LAB / "20260103T000000Z").mkdir()  # an empty dir is no run
    assert bundle.resolve(str(old)) == old
    assert bundle.resolve(LAB) == new
    assert bundle.resolve(str(tmp_path / "reports" / LAB)) == new
    with pytest.raises(bundle.BundleError, match="no runs of a lab nolab"):
        bundle.resolve("nolab")
    with pytest.raises(bundle.BundleError, match="not a run directory"):
        bundle.resolve(str(tmp_path / "reports" / LAB / "20260103T000000Z"))


def test_halab_bundle_prints_path_and_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "bundle" in cli.commands
    run, _ = make_run(tmp_path)
    assert main(["bundle", LAB]) == 0
    out = capsys.readouterr().out.splitlines()
    archive = run.with_name(run.name + ".tar.gz")
    assert out[0] == f"{archive} {archive.stat().st_size / 2**20:.1f} MiB ({archive.stat().st_size} bytes)"
    assert out[1].startswith("grepped for the lab's secrets") and "none in any of its 9 members" in out[1]
    assert main(["bundle", str(run), "--out", str(tmp_path / "x.tar.gz")]) == 0 and (tmp_path / "x.tar.gz").exists()


def test_halab_bundle_fails_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bundle", "nolab"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("halab: no run directory nolab") and "Traceback" not in err
