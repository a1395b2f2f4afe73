"""Scenario test data edited in place: shared by the scenario loader's tests."""

from __future__ import annotations

import copy
from typing import Any

DELETE = object()  # as an edit's value: remove the key


def edited(base: dict[str, Any], *edits: tuple[str, Any]) -> dict[str, Any]:
    """A deep copy of `base` with each (dotted.path, value) set, or deleted for DELETE."""
    data = copy.deepcopy(base)
    for dotted, value in edits:
        *parents, last = dotted.split(".")
        target = data
        for key in parents:
            target = target[key]
        if value is DELETE:
            del target[last]
        else:
            target[last] = value
    return data
