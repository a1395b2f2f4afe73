"""`halab bundle RUN`: one run directory (lab/evidence.py's bundle.json, report, trials' histories) as one tar.gz,
grepped for every secret of its lab before it counts as made.

Every member passes the lab's scrubber once more on the way in (files other modules wrote, and runs from before
evidence was collected, never went through it), then the archive is read back and each decompressed member
searched for every form of every secret (lab/scrub.py): one hit and the archive is deleted and the command fails.
The secrets come from the lab's state dir (bundle.json names it), which outlives `halab down`; where it is gone
the scrub at collection time is what kept them out, and the output says the archive was not grepped."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import evidence
from lab.providers.common import default_state_root
from lab.scrub import Scrubber, Secret, of_state_dir

REPO = Path(__file__).resolve().parent.parent
SUFFIX = ".tar.gz"


class BundleError(RuntimeError):
    """The run cannot be packed, or its archive holds a secret; the message says which and what to do."""


def reports_dir() -> Path:
    return Path(os.environ.get("HALAB_REPORTS_DIR", REPO / "reports"))


def _is_run(d: Path) -> bool:
    return d.is_dir() and any((d / f).exists() for f in (evidence.MANIFEST, "report.json", "trials"))


def _runs(base: Path) -> list[Path]:
    """A lab's runs, oldest first (run ids are UTC timestamps: their names sort by time)."""
    return sorted(d for d in base.iterdir() if _is_run(d)) if base.is_dir() else []


def resolve(run: str) -> Path:
    """A run directory's path, or a lab's name (or its reports dir): its latest run."""
    given = Path(run)
    if given.is_dir():
        if _is_run(given):
            return given
        if runs := _runs(given):
            return runs[-1]
        raise BundleError(f"{given} is not a run directory (no {evidence.MANIFEST}, report.json or trials/ in it)")
    base = reports_dir() / run
    if runs := _runs(base):
        return runs[-1]
    raise BundleError(
        f"no run directory {run} and no runs of a lab {run} under {base}: "
        "pass a run directory (reports/<lab>/<run-id>) or the name of a lab that ran"
    )


def secrets_for(run_dir: Path, manifest: dict[str, Any] | None) -> tuple[list[Secret], list[str]]:
    """The secrets of the run's lab and the state dirs they came from ([] where every candidate is gone)."""
    lab = (manifest or {}).get("lab") or run_dir.parent.name
    dirs = [Path(manifest["state_dir"])] if manifest and manifest.get("state_dir") else []
    dirs += [default_state_root() / lab, default_state_root() / f"{lab}.libvirt"]  # the netns and libvirt layouts
    found: list[Secret] = []
    used: list[str] = []
    for d in dict.fromkeys(dirs):
        got = of_state_dir(d)
        if got:
            found += got
            used.append(str(d))
    return found, used


@dataclass
class Packed:
    path: Path
    size: int
    members: int
    grepped: bool
    secrets_from: list[str]
    redacted_at_pack: dict[str, int] = field(default_factory=dict)
    collected: bool = True  # the run has lab/evidence.py's manifest: its evidence was scrubbed when collected

    def summary(self) -> str:
        size = f"{self.size / 2**20:.1f} MiB ({self.size} bytes)"
        grep = (
            f"grepped for the lab's secrets (from {', '.join(self.secrets_from)}): none in any of its {self.members} "
            "members"
            if self.grepped
            else "not grepped: the lab's secrets are gone with its state dir; "
            + (
                "its evidence was scrubbed when collected"
                if self.collected
                else f"the run has no {evidence.MANIFEST}: its files are packed as they were"
            )
        )
        extra = (
            f"; scrubbed while packing: {', '.join(f'{k} x{v}' for k, v in sorted(self.redacted_at_pack.items()))}"
            if self.redacted_at_pack
            else ""
        )
        return f"{self.path} {size}\n{grep}{extra}"


def _manifest_for_archive(run_dir: Path, packed_at: float) -> dict[str, Any]:
    m = evidence.load(run_dir)
    if m is None:
        m = {
            "format": evidence.FORMAT,
            "lab": run_dir.parent.name,
            "files": [],
            "notes": [f"no evidence was collected for this run (no {evidence.MANIFEST}): its files as they were"],
        }
    evidence.list_run_files(run_dir, m)
    m["packed_at"] = packed_at
    return m


def pack(run_dir: Path, out: Path | None = None) -> Packed:
    """Pack `run_dir` into `out` (default: <run-dir>.tar.gz beside it), grep it, and return what was made."""
    run_dir = run_dir.resolve()
    if not run_dir.is_dir():
        raise BundleError(f"{run_dir} is not a directory")
    out = (out or run_dir.with_name(run_dir.name + SUFFIX)).resolve()
    tmp = out.with_name(out.name + ".part")
    collected = evidence.load(run_dir) is not None
    manifest = _manifest_for_archive(run_dir, time.time())
    secrets, used = secrets_for(run_dir, manifest)
    scrubber = Scrubber(secrets)
    top = f"{manifest.get('lab') or run_dir.parent.name}-{run_dir.name}"
    out.parent.mkdir(parents=True, exist_ok=True)
    members = 0
    try:
        with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
            for p in sorted(run_dir.rglob("*")):
                rel = p.relative_to(run_dir).as_posix()
                if not p.is_file() or p.is_symlink() or p in (out, tmp) or rel == evidence.MANIFEST:
                    continue
                _add(tar, f"{top}/{rel}", scrubber.scrub_bytes(p.read_bytes()), p.stat().st_mtime)
                members += 1
            manifest["pack"] = {"redacted": dict(scrubber.counts), "secrets_from": used}
            listing = scrubber.scrub(json.dumps(manifest, indent=2)).encode()
            _add(tar, f"{top}/{evidence.MANIFEST}", listing, time.time())
            members += 1
        if scrubber:
            leaks = grep(tmp, scrubber)
            if leaks:
                raise BundleError(
                    f"the archive still holds secrets ({'; '.join(leaks[:5])}): not written; "
                    "a file of the run holds a form of a secret the scrubber does not know"
                )
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return Packed(out, out.stat().st_size, members, bool(scrubber), used, dict(scrubber.counts), collected)


def _add(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(mtime), 0o644
    tar.addfile(info, io.BytesIO(data))


# A compressed file inside the run (a .gz someone left there) hides its text from the scrubber: the grep opens it.
_COMPRESSED = ((b"\x1f\x8b", gzip.decompress), (b"BZh", bz2.decompress), (b"\xfd7zXZ\x00", lzma.decompress))


def _expanded(data: bytes) -> bytes:
    for magic, decompress in _COMPRESSED:
        if data.startswith(magic):
            try:
                return data + b"\n" + _expanded(decompress(data))
            except (OSError, ValueError, EOFError, lzma.LZMAError):
                return data
    return data


def grep(archive: Path, scrubber: Scrubber) -> list[str]:
    """`member: secret names` for every member whose name or decompressed content (and, for a compressed file in
    the run, its content decompressed once more) holds a form of a secret."""
    leaks = []
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            data = b""
            if member.isfile():
                fh = tar.extractfile(member)
                data = _expanded(fh.read()) if fh else b""
            names = scrubber.find(member.name.encode() + b"\n" + data)
            if names:
                leaks.append(f"{member.name}: {', '.join(names)}")
    return leaks
