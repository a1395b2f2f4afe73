"""Validation helpers for scenario files: each check fails with one _Invalid (field, problem, fix) that
lab/scenario.py turns into a ScenarioError naming the file."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any, NoReturn

import yaml

NO_QUORUM_POLICIES = ("ignore", "stop", "freeze", "demote", "suicide")


class FieldError(ValueError):
    """One mistake in a file of the lab's (a scenario, a schedule): the file, the field, the problem and the fix."""

    def __init__(self, path: str | Path, field: str, problem: str, fix: str) -> None:
        self.path, self.field, self.problem, self.fix = str(path), field, problem, fix
        super().__init__(f"{self.path}: {field}: {problem}. Fix: {fix}")

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.path, self.field, self.problem, self.fix)


class _Invalid(Exception):
    """A ScenarioError before the file's path is attached."""

    def __init__(self, field: str, problem: str, fix: str) -> None:
        super().__init__(field, problem, fix)
        self.field, self.problem, self.fix = field, problem, fix


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys (YAML would keep only the last)."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._path: list[str] = []

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        key = index.value if isinstance(index, yaml.ScalarNode) else index if isinstance(index, int) else None
        if key is not None:
            self._path.append(str(key))
        try:
            return super().compose_node(parent, index)
        finally:
            if key is not None:
                self._path.pop()

    # The anchor's name (str | None); types-PyYAML declares it dict[Any, Node], which PyYAML never passes.
    def compose_mapping_node(self, anchor: Any) -> yaml.MappingNode:
        node = super().compose_mapping_node(anchor)
        first_line: dict[str, int] = {}
        for key, _ in node.value:
            if not isinstance(key, yaml.ScalarNode):
                continue
            line = key.start_mark.line + 1
            if key.value in first_line:
                raise _Invalid(
                    ".".join([*self._path, key.value]),
                    f"duplicate key {key.value!r} on line {line} (first on line {first_line[key.value]})",
                    "YAML would silently keep only the last one: rename or merge the two entries",
                )
            first_line[key.value] = line
        return node


_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")  # a hostname label
_RESOURCE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")  # a Pacemaker id


def _fail(field: str, problem: str, fix: str) -> NoReturn:
    raise _Invalid(field, problem, fix)


def _show(value: Any) -> str:
    return "nothing" if value is None else f"{value!r} ({type(value).__name__})"


def _section(data: Any, where: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
    """`data` as a dict with every `required` key and no key outside `required + optional`."""
    allowed = required + optional
    if not isinstance(data, dict):
        _fail(
            where or "(file)",
            f"expected a mapping, got {_show(data)}",
            f"write {f'`{where}`' if where else 'the file'} as `key: value` lines ({', '.join(allowed)})",
        )
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            _fail(
                f"{where}.{key}" if where else str(key),
                f"unknown key {key!r}{hint}",
                f"use only the allowed keys: {', '.join(allowed)}",
            )
    for key in required:
        if key not in data:
            _fail(
                f"{where}.{key}" if where else key,
                "missing required field",
                f"add `{key}:` to {f'`{where}`' if where else 'the top level'}",
            )
    return data


def _items(data: Any, where: str, required: bool = False) -> list[tuple[str, Any]]:
    """The (name, entry) pairs of a named collection such as `nodes`."""
    if data is None or data == {}:
        if required:
            _fail(where, "no entries", f"define at least one entry under `{where}:`")
        return []
    if not isinstance(data, dict):
        _fail(
            where,
            f"expected a mapping of names to entries, got {_show(data)}",
            f"write each entry as `name: {{...}}` under `{where}:`",
        )
    for name in data:
        _name(name, f"{where}.{name}")
    return list(data.items())


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        _fail(
            where,
            f"{value!r} is not a valid name",
            "use lowercase letters, digits and inner '-' (names become hostnames and interface names)",
        )
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        _fail(where, f"expected text, got {_show(value)}", "write a non-empty string")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        _fail(where, f"expected true or false, got {_show(value)}", "write true or false (unquoted)")
    return value


def _int(value: Any, where: str, low: int = 1, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f">= {low}"
        _fail(where, f"expected a whole number {bounds}, got {_show(value)}", f"write an integer {bounds}")
    return value


def _port(value: Any, where: str) -> int:
    return _int(value, where, 1, 65535)


def _ip(value: Any, where: str) -> IPv4Address:
    if isinstance(value, str):
        try:
            return IPv4Address(value)
        except ValueError:
            pass
    _fail(where, f"{_show(value)} is not an IPv4 address", "write a dotted quad such as 192.0.2.10")


def _cidr(value: Any, where: str) -> IPv4Network:
    if not isinstance(value, str) or "/" not in value:
        _fail(where, f"{_show(value)} is not a CIDR", "write network/prefix, e.g. 192.0.2.0/24")
    try:
        return IPv4Network(value)
    except ValueError as e:
        if "host bits set" in str(e):
            _fail(
                where,
                f"{value} has host bits set",
                f"use the network address: {IPv4Network(value, strict=False)}",
            )
        _fail(where, f"{value!r} is not an IPv4 CIDR ({e})", "write network/prefix, e.g. 192.0.2.0/24")


def _host_on(addr: IPv4Address, net: Any, where: str) -> None:
    """`addr` must be a usable host address of `net`."""
    cidr = net.cidr
    usable = f"{cidr.network_address + 1} to {cidr.broadcast_address - 1}" if cidr.prefixlen < 31 else str(cidr)
    if addr not in cidr:
        _fail(where, f"{addr} is outside network {net.name} ({cidr})", f"pick an address from {usable}")
    if cidr.prefixlen < 31 and addr in (cidr.network_address, cidr.broadcast_address):
        kind = "network" if addr == cidr.network_address else "broadcast"
        _fail(where, f"{addr} is the {kind} address of {net.name} ({cidr})", f"pick an address from {usable}")


def _ref(value: Any, known: Mapping[str, Any], where: str, what: str) -> str:
    """`value` must name an entry of `known` (a network, a vip, a profile)."""
    if not isinstance(value, str) or value not in known:
        _fail(where, f"unknown {what} {value!r}", f"use one of: {', '.join(known) or '(none defined)'}")
    return value


def _policy(value: Any, where: str) -> str:
    if value not in NO_QUORUM_POLICIES:
        _fail(where, f"{_show(value)} is not a no-quorum-policy", f"use one of: {', '.join(NO_QUORUM_POLICIES)}")
    return value


def _resource(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _RESOURCE.match(value):
        _fail(
            where,
            f"{_show(value)} is not a valid Pacemaker resource id",
            "start with a letter or '_', then use letters, digits, '_', '.' or '-'",
        )
    return value


def _claim(taken: dict[Any, str], value: Any, where: str, fix: str) -> None:
    """Record that `where` uses `value`; fail if another field already does."""
    if value in taken:
        _fail(where, f"{value} is already used by {taken[value]}", fix)
    taken[value] = where


