"""The daemons' logs for a run's bundle (lab/evidence.py at "end"): which files, fetched in one call per node, and
cut to the run's window.

Where each daemon logs comes from provision/logs.py, by the node's roles; Pacemaker's scheduler inputs
(/var/lib/pacemaker/pengine/pe-*.bz2) are picked by mtime in the window and stored decompressed (XML the scrubber
can read). "Cut to the window": the lines before the first one timestamped at or after the run's start are dropped;
a file with no timestamp this module reads is kept whole, and its manifest entry says so."""

from __future__ import annotations

import base64
import bz2
import re
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from provision import logs as node_logs

# Which provision/logs.py entries a role's daemons write (a role's name is not always its log's).
ROLE_LOGS = {
    "pacemaker": ("corosync", "pacemaker"),
    "mysql": ("mysql",),
    "galera": ("galera", "clustercheck"),
    "rabbitmq": ("rabbitmq",),
    "haproxy": ("haproxy",),
    "keepalived": ("keepalived",),
    "memcached": ("memcached",),
    "api": ("api", "keystone", "glance", "cinder", "neutron", "ceilometer"),  # OpenStack runs on the api nodes
}
PENGINE = "/var/lib/pacemaker/pengine"
# A log's last this-many bytes at most (a long-lived lab's pacemaker.log): the window is at its end anyway.
MAX_FILE_BYTES = 32 * 1024 * 1024
# Timestamps with one-second resolution: a line stamped in the start's second may follow the start.
SLACK_S = 1.0


def globs(roles: tuple[str, ...], drbd: bool) -> list[str]:
    found: list[str] = []
    for role in roles:
        for service in ROLE_LOGS.get(role, ()):
            found.append(node_logs.LOGS[service])
    if drbd and "pacemaker" in roles:
        found.append(node_logs.LOGS["drbd"])  # DRBD's kernel messages (libvirt VMs: a kernel of their own)
    return list(dict.fromkeys(found))


def script(patterns: list[str], start: float, pengine: bool) -> str:
    """One call: the node's UTC offset, then per file modified in the window a header and its base64 content;
    files not modified since the start are listed as `old` (nothing of them can be in the window)."""
    since = int(start)

    def emit(kind: str) -> str:
        b64 = '"$(printf %s "$f" | base64 -w0)"'
        return (
            f'if [ -n "$(find "$f" -maxdepth 0 -newermt @{since} 2>/dev/null)" ]; then '
            f'printf "file {kind} %s %s %s\\n" "$(stat -c %s "$f")" "$(stat -c %Y "$f")" {b64}; '
            f'tail -c {MAX_FILE_BYTES} "$f" | base64 -w0; echo; '
            f'else printf "old %s %s\\n" "$(stat -c %Y "$f")" {b64}; fi'
        )

    lines = ['printf "tz %s\\n" "$(date +%z)"']
    if patterns:  # globs unquoted: expanded in the node; one that matches nothing stays literal and is skipped
        lines.append(f'for f in {" ".join(patterns)}; do [ -f "$f" ] || continue; {emit("log")}; done')
    if pengine:
        lines.append(
            f"find {shlex.quote(PENGINE)} -maxdepth 1 -name 'pe-*.bz2' -newermt @{since} 2>/dev/null | sort -V | "
            f"while read -r f; do {emit('pe')}; done"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class Fetched:
    kind: str  # log | pe | old
    path: str
    size: int
    mtime: float
    data: bytes  # the file (pe: decompressed); empty for `old`
    truncated: bool = False


def parse(out: str) -> tuple[int, list[Fetched]]:
    """(the node's UTC offset in seconds, the files) from the script's output."""
    tz, found = 0, []
    lines = out.splitlines()
    i = 0
    while i < len(lines):
        parts = lines[i].split()
        i += 1
        if parts[:1] == ["tz"] and len(parts) == 2 and re.fullmatch(r"[+-]\d{4}", parts[1]):
            sign = -1 if parts[1][0] == "-" else 1
            tz = sign * (int(parts[1][1:3]) * 3600 + int(parts[1][3:5]) * 60)
        elif parts[:1] == ["old"] and len(parts) == 3:
            found.append(Fetched("old", base64.b64decode(parts[2]).decode(errors="replace"), 0, float(parts[1]), b""))
        elif parts[:1] == ["file"] and len(parts) == 5:
            kind, size, mtime, path = parts[1], int(parts[2]), float(parts[3]), base64.b64decode(parts[4]).decode()
            data = base64.b64decode(lines[i]) if i < len(lines) else b""
            i += 1
            if kind == "pe":
                try:
                    data = bz2.decompress(data)
                except (OSError, ValueError):  # a pe file half-written at the moment of reading: kept as it was
                    kind = "pe-raw"
            found.append(Fetched(kind, path, size, mtime, data, truncated=size > MAX_FILE_BYTES))
    return tz, found


# ------------------------------------------------------------------------------------ timestamps and the cut
_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")  # C locale, as logs write
MONTHS = {m: i + 1 for i, m in enumerate(_ABBR)}
_ISO = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?")  # rabbitmq, mariadb
_CTIME = re.compile(r"^[A-Z][a-z]{2} ([A-Z][a-z]{2}) +(\d{1,2}) (\d\d):(\d\d):(\d\d)(\.\d+)? (\d{4})\b")  # keepalived
_SYSLOG = re.compile(r"^([A-Z][a-z]{2}) +(\d{1,2}) (\d\d):(\d\d):(\d\d)(\.\d+)?\b")  # corosync, pacemaker: no year
_YYMMDD = re.compile(r"^(\d\d)(\d\d)(\d\d) +(\d{1,2}):(\d\d):(\d\d)\b")  # mysqld_safe
_CLF = re.compile(r"\[(\d\d)/([A-Z][a-z]{2})/(\d{4}):(\d\d):(\d\d):(\d\d)(\.\d+)?( [+-]\d{4})?\]")  # haproxy tcplog


def _zone(text: str | None, default: timezone) -> timezone:
    if not text:
        return default
    if text == "Z":
        return UTC
    t = text.strip().replace(":", "")
    sign = -1 if t[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(t[1:3]), minutes=int(t[3:5])))


def _at(y: int, mo: int, d: int, h: int, mi: int, s: int, frac: str | None, tz: timezone) -> float | None:
    try:
        dt = datetime(y, mo, d, h, mi, s, tzinfo=tz)
    except ValueError:
        return None
    return dt.timestamp() + (float(frac) if frac else 0.0)


def timestamp(line: str, tz: timezone, start: float, now: float) -> float | None:
    """Epoch seconds of a log line's own timestamp, None if it has none this reads. Times without a zone are the
    node's (`tz`); without a year, the one that puts them nearest the run (syslog's format)."""
    if m := _ISO.match(line):
        y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
        return _at(y, mo, d, h, mi, s, m.group(7), _zone(m.group(8), tz))
    if (m := _CTIME.match(line)) and m.group(1) in MONTHS:
        d, h, mi, s = (int(g) for g in m.groups()[1:5])
        return _at(int(m.group(7)), MONTHS[m.group(1)], d, h, mi, s, m.group(6), tz)
    if (m := _SYSLOG.match(line)) and m.group(1) in MONTHS:
        mo, (d, h, mi, s), frac = MONTHS[m.group(1)], (int(g) for g in m.groups()[1:5]), m.group(6)
        year = datetime.fromtimestamp(start, tz).year
        at = _at(year, mo, d, h, mi, s, frac, tz)
        if at is not None and at > now + 2 * 86400:  # December's lines read in January
            at = _at(year - 1, mo, d, h, mi, s, frac, tz)
        elif at is not None and at < start - 183 * 86400:  # a run across New Year
            at = _at(year + 1, mo, d, h, mi, s, frac, tz)
        return at
    if m := _YYMMDD.match(line):
        yy, mo, d, h, mi, s = (int(g) for g in m.groups())
        return _at(2000 + yy, mo, d, h, mi, s, None, tz)
    if (m := _CLF.search(line)) and m.group(2) in MONTHS:
        d, y = int(m.group(1)), int(m.group(3))
        h, mi, s = (int(g) for g in m.groups()[3:6])
        return _at(y, MONTHS[m.group(2)], d, h, mi, s, m.group(7), _zone(m.group(8), tz))
    return None


def cut(text: str, start: float, tz_offset_s: int, now: float) -> tuple[str, str]:
    """(what is kept, how it was cut): from the first line timestamped in the window on, unless no line before it
    is timestamped before the window (then nothing shows those lines are older: all kept). Untimestamped lines
    after an old one continue its message and go with it."""
    tz = timezone(timedelta(seconds=tz_offset_s))
    lines = text.splitlines(keepends=True)
    old = False
    for i, line in enumerate(lines):
        at = timestamp(line, tz, start, now)
        if at is None:
            continue
        if at < start - SLACK_S:
            old = True
            continue
        if not old:
            return text, "nothing before the run's start"
        return "".join(lines[i:]), f"{i} of {len(lines)} lines before the run's start dropped (by line timestamps)"
    if not old:
        return text, "whole file: no line timestamps in a format the cutter reads"
    return "", f"every one of its {len(lines)} lines predates the run's start: nothing kept"
