"""Acknowledged data must survive: every `ok` write is in the table, every confirmed message is delivered.

Indeterminate (`info`) ops may or may not have taken effect, so either outcome is fine; they are
only counted. A `fail`ed op that took effect anyway is reported too, without failing the check.

Messages: the trial pauses the consumer a little before its first fault (the consumer records `pause`), so
confirmed messages sit in the queue through the fault; the drain after recovery must find them. A trial that
asks for a backlog fails when fewer than that many were in the queue at the fault: a broker back with an empty
queue would pass otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lab.checks.base import Check, id_list
from lab.history import FAIL, INFO, OK, History


def _ids(values: Iterable[Any]) -> set[int]:
    out: set[int] = set()
    for v in values:
        if isinstance(v, list | tuple | set):
            out |= _ids(v)
        elif v is not None:
            out.add(int(v))
    return out


def _values(history: History, f: str, type: str, service: str) -> set[int]:
    return _ids(o.value for o in history.select(f=f, type=type, service=service))


def _side_notes(history: History, f: str, service: str, present: set[int]) -> str:
    info = _values(history, f, INFO, service)
    failed = _values(history, f, FAIL, service) & present
    note = f"indeterminate: {len(info & present)} present, {len(info - present)} absent (either is fine)"
    if failed:
        note += f"; {len(failed)} failed but present: {id_list(failed)}"
    return note


def _acked_and_lost(history: History, service: str, found_ids: set[int]) -> tuple[set[int], set[int], str]:
    """(acknowledged write ids, those not found, the side notes on indeterminate and failed writes)."""
    acked, found = _values(history, "write", OK, service), _ids(found_ids)
    return acked, acked - found, _side_notes(history, "write", service, found)


def lost_writes(history: History, present_ids: set[int], service: str = "mysql") -> Check:
    """Every acknowledged write's row id must be in `present_ids` (the ids read back after the run)."""
    acked, lost, notes = _acked_and_lost(history, service, present_ids)
    name = f"lost-writes:{service}"
    if lost:
        detail = f"{len(lost)} of {len(acked)} acknowledged writes lost: {id_list(lost)}; {notes}"
        return Check(name, False, detail)
    return Check(name, True, f"all {len(acked)} acknowledged writes present; {notes}")


def unconsumed(history: History, service: str = "rabbitmq", at: float | None = None) -> set[int]:
    """Ids of the messages confirmed and not consumed by `at` (else by the end of the history): what the queue
    must hold then."""
    confirmed = _ids(o.value for o in history.select(f="publish", type=OK, service=service, until=at))
    return confirmed - _ids(o.value for o in history.select(f="consume", type=OK, service=service, until=at))


def _backlog(history: History, service: str, drained: set[int], wanted: int) -> tuple[str, str | None]:
    """(what the queue held at the first fault after the consumer's pause and what became of it, the problem if
    the backlog the trial asked for was not there). Without a pause (a trial without faults) there is none."""
    pause = next(iter(history.select(f="pause", type=INFO, service=service)), None)
    fault = None
    if pause is not None:
        fault = next(iter(history.select(f="fault", process="nemesis", since=pause.time)), None)
    if pause is None or fault is None:
        what = "the consumer never paused" if pause is None else "no fault came after the consumer's pause"
        return "", f"{what}: no backlog of {wanted} confirmed messages was held through a fault" if wanted else None
    held = unconsumed(history, service, at=fault.time)
    later = _ids(o.value for o in history.select(f="consume", type=OK, service=service) if o.time > fault.time)
    missing = held - drained - later
    if missing:
        said = f"{len(held)} in the queue at the fault, {len(missing)} of them missing after it"
    elif held - drained:
        said = f"{len(held)} in the queue at the fault, all received after it "
        said += f"({len(held & drained)} drained, {len(held - drained)} consumed after the resume)"
    else:
        said = f"{len(held)} in the queue at the fault, all drained after recovery"
    if len(held) < wanted:
        return said, f"only {len(held)} confirmed messages were in the queue at the fault, fewer than the {wanted} held"
    return said, None


def lost_messages(history: History, drained_ids: set[int], service: str = "rabbitmq", *, backlog: int = 0) -> Check:
    """Every confirmed publish must have been consumed during the run or drained from the queue after it. With
    `backlog`, at least that many confirmed messages must have been in the queue at the fault (the consumer
    paused before it): the check says how many, and that the drain after recovery found them."""
    confirmed = _values(history, "publish", OK, service)
    consumed = _values(history, "consume", OK, service)
    drained = _ids(drained_ids)
    received = consumed | drained
    lost = confirmed - received
    notes = _side_notes(history, "publish", service, received)
    counts = f"{len(consumed)} consumed during the run, {len(drained)} drained after"
    held, problem = _backlog(history, service, drained, backlog)
    counts += f"; {held}" if held else ""
    name = f"lost-messages:{service}"
    if lost:
        detail = f"{len(lost)} of {len(confirmed)} confirmed messages lost: {id_list(lost)}"
        detail += f"; {counts}; {notes}" + (f"; {problem}" if problem else "")
        return Check(name, False, detail)
    detail = f"all {len(confirmed)} confirmed messages delivered ({counts}); {notes}"
    if problem:  # nothing lost, but nothing was at stake either: a broker that came back empty would pass
        return Check(name, False, f"{problem} (a broker back with an empty queue would pass); {detail}")
    return Check(name, True, detail)


def lost_api_messages(history: History, drained_ids: set[int], service: str = "api") -> Check:
    """Every acknowledged API write's message must be in its queue after the run: the API answers 200 only after
    the broker confirmed the message (nothing consumes that queue, so the drain must find every one)."""
    acked, lost, notes = _acked_and_lost(history, service, drained_ids)
    name = f"lost-messages:{service}"
    if lost:
        return Check(name, False, f"{len(lost)} of {len(acked)} acknowledged writes' messages lost: {id_list(lost)}")
    return Check(name, True, f"all {len(acked)} acknowledged writes' messages drained from the API's queue; {notes}")


def image_intact(history: History, service: str, since: float) -> Check:
    """The image uploaded before `since` (the first fault) must outlive it, whole: listed, and downloaded after it
    with the sha256 it was uploaded with (lab/workload/image.py records both digests). Every refused list or
    download counts against it (a wrong checksum, a 404, Glance's 204 for data gone from the store, an image no
    longer listed), except those that say nothing of the image: a connect that failed (nothing sent) and a 401 (the
    client's token, renewed at once)."""
    name = f"image-intact:{service}"
    uploads = history.select(service=service, f="upload", type=OK)
    if not uploads:
        return Check(name, False, "no image was uploaded: nothing was at stake")
    digest, at = uploads[0].value, uploads[0].time
    if at >= since:
        return Check(name, False, f"the image was uploaded {round((at - since) * 1000)} ms after the fault, not before")
    refused = [
        o
        for o in history.select(service=service, f=("list", "download"), type=FAIL)
        if not (o.error or "").startswith(("connect:", "401"))
    ]
    after = history.select(service=service, f="download", type=OK, since=since)
    detail = (
        f"image sha256 {str(digest)[:16]}… uploaded {round((since - at) * 1000)} ms before the fault; "
        f"{len(after)} downloads after it, each with that sha256"
    )
    if refused:
        wrong = sum((o.error or "").startswith("checksum") for o in refused)
        first = refused[0].error
        return Check(name, False, f"{len(refused)} lists/downloads found it gone or changed ({wrong} with another "
                                  f"sha256; first: {first}); {detail}")  # fmt: skip
    if not after:
        return Check(name, False, f"none downloaded after the fault; {detail}")
    return Check(name, True, detail)
