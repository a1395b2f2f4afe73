"""Acknowledged data must survive: every `ok` write is in the table, every confirmed message is delivered.

Indeterminate (`info`) ops may or may not have taken effect, so either outcome is fine; they are
only counted. A `fail`ed op that took effect anyway is reported too, without failing the check.
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


def lost_writes(history: History, present_ids: set[int], service: str = "mysql") -> Check:
    """Every acknowledged write's row id must be in `present_ids` (the ids read back after the run)."""
    acked = _values(history, "write", OK, service)
    present = _ids(present_ids)
    lost = acked - present
    notes = _side_notes(history, "write", service, present)
    name = f"lost-writes:{service}"
    if lost:
        detail = f"{len(lost)} of {len(acked)} acknowledged writes lost: {id_list(lost)}; {notes}"
        return Check(name, False, detail)
    return Check(name, True, f"all {len(acked)} acknowledged writes present; {notes}")


def lost_messages(history: History, drained_ids: set[int], service: str = "rabbitmq") -> Check:
    """Every confirmed publish must have been consumed during the run or drained from the queue after it."""
    confirmed = _values(history, "publish", OK, service)
    consumed = _values(history, "consume", OK, service)
    drained = _ids(drained_ids)
    received = consumed | drained
    lost = confirmed - received
    notes = _side_notes(history, "publish", service, received)
    counts = f"{len(consumed)} consumed during the run, {len(drained)} drained after"
    name = f"lost-messages:{service}"
    if lost:
        detail = f"{len(lost)} of {len(confirmed)} confirmed messages lost: {id_list(lost)}"
        detail += f"; {counts}; {notes}"
        return Check(name, False, detail)
    return Check(name, True, f"all {len(confirmed)} confirmed messages delivered ({counts}); {notes}")
