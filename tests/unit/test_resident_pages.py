"""Distinct resident pages, measured on real processes of the test run (no daemon): a forked child shares its
parent's pages, so the two together hold far fewer pages than their RSS added up."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from lab.providers.resident_pages import frames, resident_kib

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(os.geteuid() != 0, reason="page frame numbers need CAP_SYS_ADMIN (root)"),
]


def rss_kib(pid: int) -> int:
    line = next(ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("VmRSS:"))
    return int(line.split()[1])


def test_one_process_holds_about_its_rss() -> None:
    me = os.getpid()
    got = resident_kib([me])
    assert got is not None
    # RSS counts a page once per mapping of it; a page mapped twice in one process is one frame here
    assert 0.5 * rss_kib(me) <= got <= rss_kib(me) * 1.05 + 64


def test_a_forked_child_adds_only_the_pages_it_does_not_share() -> None:
    parent = os.getpid()
    ballast = bytearray(os.urandom(32 * 1024 * 1024))  # 32 MiB the child inherits copy-on-write
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child only waits to be measured
        os.close(read)
        os.write(write, b"x")
        signal.pause()
    try:
        os.close(write)
        os.read(read, 1)
        both = resident_kib([parent, child])
        assert both is not None
        added = rss_kib(parent) + rss_kib(child)
        assert both < added - 30 * 1024, f"{both} KiB together, {added} KiB of RSS added up: the ballast twice"
        assert both >= max(rss_kib(parent), rss_kib(child)) * 0.5
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        del ballast


def test_a_process_that_is_gone_holds_nothing() -> None:
    pid = os.fork()
    if pid == 0:  # pragma: no cover
        os._exit(0)
    os.waitpid(pid, 0)
    assert frames(pid) == set()
    assert resident_kib([pid]) is None  # nothing read is no measurement, not 0 KiB
    assert resident_kib([]) is None
