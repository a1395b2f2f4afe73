"""Two runs side by side (`halab replay`): verdicts, each event's downtime and floor, and every check whose outcome
changed. Pure functions over two report.json contents (lab/report.py Report.to_dict)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

Event = dict[str, Any]


def _keyed(events: list[Event]) -> dict[tuple[str, str, int], Event]:
    """Events keyed by (fault, service, n-th such): the same schedule replayed gives the same keys, even where a
    selector chose another node this time (the target is shown, not matched)."""
    seen: Counter[tuple[str, str]] = Counter()
    out: dict[tuple[str, str, int], Event] = {}
    for e in events:
        k = (str(e.get("fault")), str(e.get("service") or "-"))
        out[(*k, seen[k])] = e
        seen[k] += 1
    return out


def _ms(v: Any) -> str:
    return "never" if v is None else str(v)


def _checks(report: dict[str, Any], prefixes: Iterable[str] = ()) -> dict[str, bool]:
    """check name -> passed. With `prefixes` (trial names), "crash-active: lost-writes:mysql" is "lost-writes:mysql":
    a suite's trials and a replay's one schedule trial run the same checks under other names; one name passes
    only if every check of that name passed."""
    strip = tuple(f"{p}: " for p in prefixes)
    out: dict[str, bool] = {}
    for c in report.get("checks", []):
        name = str(c["name"])
        name = next((name[len(p) :] for p in strip if name.startswith(p)), name)
        out[name] = out.get(name, True) and bool(c["passed"])
    return out


def changed_checks(a: dict[str, Any], b: dict[str, Any], prefixes: Iterable[str] = ()) -> list[tuple[str, str, str]]:
    """(check, outcome in a, outcome in b) for every check that passed in one run and not in the other, or ran in
    only one of them."""
    ca, cb = _checks(a, prefixes), _checks(b, prefixes)
    word = {True: "pass", False: "FAIL", None: "absent"}
    return [
        (name, word[ca.get(name)], word[cb.get(name)])
        for name in sorted(set(ca) | set(cb))
        if ca.get(name) != cb.get(name)
    ]


def side_by_side(
    a: dict[str, Any],
    b: dict[str, Any],
    *,
    labels: tuple[str, str] = ("original", "replay"),
    prefixes: Iterable[str] = (),
) -> str:
    """The comparison as text: a header per run, the events table with both runs' downtime and floor, the changed
    checks (or a line saying none changed)."""
    la, lb = labels
    lines = [
        f"{la}: {a.get('scenario')} [{a.get('provider')}, profile {a.get('profile')}] "
        f"started {a.get('started_at')}: verdict {a.get('verdict')}",
        f"{lb}: {b.get('scenario')} [{b.get('provider')}, profile {b.get('profile')}] "
        f"started {b.get('started_at')}: verdict {b.get('verdict')}",
        "",
    ]
    row = "{:<22} {:<11} {:<10} {:>13} {:>13} {:>13} {:>13}"
    heads = [f"{la[:4]} down", f"{la[:4]} floor", f"{lb[:4]} down", f"{lb[:4]} floor"]
    lines.append(row.format("fault", "target", "service", *heads))
    ea, eb = _keyed(a.get("events", [])), _keyed(b.get("events", []))
    for key in list(ea) + [k for k in eb if k not in ea]:
        x, y = ea.get(key, {}), eb.get(key, {})
        targets = dict.fromkeys(str(e.get("target")) for e in (x, y) if e)  # one name when both runs agree
        lines.append(
            row.format(
                key[0][:22],
                "|".join(targets)[:11],
                key[1][:10],
                _ms(x.get("downtime_ms")) if x else "-",
                _ms(x.get("floor_ms")) if x.get("floor_ms") is not None else "-",
                _ms(y.get("downtime_ms")) if y else "-",
                _ms(y.get("floor_ms")) if y.get("floor_ms") is not None else "-",
            )
        )
    lines.append("")
    prefixes = tuple(prefixes)
    changed = changed_checks(a, b, prefixes)
    if changed:
        lines.append(f"checks whose outcome changed ({len(changed)}):")
        lines += [f"  {x:<6} -> {y:<6} {name}" for name, x, y in changed]
    else:
        na, nb = len(_checks(a, prefixes)), len(_checks(b, prefixes))
        lines.append(f"no check changed its outcome ({na} in {la}, {nb} in {lb})")
    return "\n".join(lines) + "\n"
