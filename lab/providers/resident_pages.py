"""A node's memory as a machine of its own would hold it: its processes' resident pages, each physical page
counted once (/proc/PID/pagemap).

RSS summed over processes counts a page once per process that maps it: uwsgi's and ceilometer's forked workers,
and every Python process's shared libraries, are counted several times. PSS splits a shared page between all
its mappers, including other nodes' processes on this one kernel (the same libraries), so it under-counts a
node. The union of page frames is what the node's processes hold between them, neither more nor less; it
leaves out what a VM would also hold that no process maps (its kernel, unmapped page cache)."""

from __future__ import annotations

import os
from array import array
from collections.abc import Iterable

PAGE = os.sysconf("SC_PAGE_SIZE")
PRESENT = 1 << 63
FRAME = (1 << 55) - 1  # bits 0-54: the page frame number (0 unless the reader has CAP_SYS_ADMIN)


def _mapped_ranges(pid: int) -> list[tuple[int, int]]:
    """The process's mappings that hold any resident page (smaps' Rss), as (first page, page count)."""
    ranges: list[tuple[int, int]] = []
    span: tuple[int, int] | None = None
    with open(f"/proc/{pid}/smaps") as fh:
        for line in fh:
            head = line.split(maxsplit=1)[0]
            if "-" in head and not head.endswith(":"):  # a mapping's header: start-end perms ...
                start, end = (int(x, 16) for x in head.split("-"))
                span = (start // PAGE, (end - start) // PAGE)
            elif head == "Rss:" and span is not None:
                if int(line.split()[1]) > 0:
                    ranges.append(span)
                span = None
    return ranges


def frames(pid: int) -> set[int]:
    """The page frames resident in one process's memory (empty when it is gone)."""
    found: set[int] = set()
    try:
        ranges = _mapped_ranges(pid)
        with open(f"/proc/{pid}/pagemap", "rb") as pm:
            for first, count in ranges:
                pm.seek(first * 8)
                entries = array("Q")
                try:
                    entries.frombytes(pm.read(count * 8))
                except OSError:  # [vsyscall] and the like: not readable through pagemap
                    continue
                found.update(e & FRAME for e in entries if e & PRESENT)
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return set()
    return found


def resident_kib(pids: Iterable[int]) -> int | None:
    """KiB of distinct resident pages held by `pids` together; None where page frames cannot be read (no
    CAP_SYS_ADMIN: the kernel reports every frame as 0) or nothing was read at all (no pid, every one gone or
    refused): 0 would read as a measurement."""
    union: set[int] = set()
    for pid in pids:
        union |= frames(pid)
    if not union or union == {0}:
        return None
    return len(union) * PAGE // 1024
