"""The result every checker returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


def id_list(ids: set[int] | list[int], limit: int = 10) -> str:
    """`3, 7, 9` or `3, 7, 9, ... (+12 more)`: at most `limit` ids, sorted."""
    ordered = sorted(ids)
    shown = ", ".join(str(i) for i in ordered[:limit])
    return shown + (f", ... (+{len(ordered) - limit} more)" if len(ordered) > limit else "")
