"""Fault schedules (schedules/*.yaml): faults as data, played in order (Jepsen's generators, written down).

`load_schedule` validates a schedule against a scenario before any lab exists; every mistake is one ScheduleError
naming the file and the field as a dotted path (`steps.3.duration`, `steps.2.random.faults.1.target`; list
positions count from 1). `plan` expands it into the flat list of actions the player runs: `after`, `repeat` and
`random` unrolled, every Apply given a unique ref, a `duration` kept on its Apply (the player heals it that long
after applying it). Only `random:` blocks draw from plan's seed; `random:ROLE` targets are resolved by the lab."""

from __future__ import annotations

import dataclasses
import difflib
import math
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import yaml

from lab.faults import FAULTS, Fault, FaultError, catalogue, make
from lab.scenario import Scenario
from lab.scenario_fields import FieldError, _fail, _int, _Invalid, _section, _show, _StrictLoader

SCHEDULE_DIR = Path(__file__).resolve().parent.parent / "schedules"
KINDS = ("wait", "sleep", "fault", "heal", "repeat", "random")
CONDITIONS = ("settled", "quorate", "up")
_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*\Z")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\Z")
_DEFAULT_ID = re.compile(r"step-\d+\Z")
_FIX = re.compile(r"[;:] (?=(?:use|write|name|give|set)\b)")  # where a FaultError's problem ends and its fix starts


class ScheduleError(FieldError):
    """One mistake in a schedule: the file, the field, the problem and the fix."""


# --- the expanded plan (what the player runs) ----------------------------------------------------
@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Wait:
    condition: str  # settled | quorate | up
    arg: str | None = None  # the service, for up
    timeout_s: float | None = None  # None: the player's default


@dataclass(frozen=True)
class Apply:
    fault: Fault  # its target still a selector
    duration_s: float | None  # heal it that long after applying it; None: until a Heal
    ref: str  # unique in the plan: its id (suffixed inside repeat/random) or step-N


@dataclass(frozen=True)
class Heal:
    ref: str  # "all" or an earlier Apply's ref


Action = Sleep | Wait | Apply | Heal


# --- the parsed schedule (before expansion) ------------------------------------------------------
@dataclass(frozen=True)
class FaultStep:
    fault: Fault
    duration_s: float | None = None
    id: str | None = None  # None: the plan names it step-N


@dataclass(frozen=True)
class Repeat:
    times: int
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Chaos:  # a `random:` block: `count` faults drawn from `faults`, `every_s` apart
    count: int
    every_s: float | None
    faults: tuple[FaultStep, ...]


Step = Sleep | Wait | Heal | FaultStep | Repeat | Chaos  # `after:` is parsed into a Sleep before its step


@dataclass(frozen=True)
class Schedule:
    path: Path
    description: str
    seed: int | None
    steps: tuple[Step, ...]


# --- loading -------------------------------------------------------------------------------------
class _Loader(_StrictLoader):  # duplicate keys named with list positions from 1, as every other field path
    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        return super().compose_node(parent, index + 1 if type(index) is int else index)


def schedule_path(name_or_path: str | Path) -> Path:
    """An existing file as is, else ``SCHEDULE_DIR/<name>.yaml``."""
    given = Path(name_or_path)
    candidate = SCHEDULE_DIR / (given.name if given.suffix == ".yaml" else f"{given.name}.yaml")
    if given.is_file() or (len(given.parts) == 1 and candidate.is_file()):
        return given if given.is_file() else candidate
    names = ", ".join(sorted(p.stem for p in SCHEDULE_DIR.glob("*.yaml"))) or "(none)"
    fix = f"use a schedule name from {SCHEDULE_DIR} ({names}) or the path of an existing .yaml file"
    raise ScheduleError(name_or_path, "(file)", "no such schedule file", fix)


def load_schedule(path_or_name: str | Path, scenario: Scenario) -> Schedule:
    """Read a schedule by name or path and validate every step against `scenario`."""
    path = schedule_path(path_or_name)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
        return _Parser(scenario).schedule(data, path)
    except _Invalid as e:
        raise ScheduleError(path, e.field, e.problem, e.fix) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ScheduleError(path, "(file)", f"cannot read it ({e})", "make it a readable UTF-8 text file") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        problem = f"not valid YAML ({getattr(e, 'problem', None) or e})"
        raise ScheduleError(path, where, problem, "check the indentation, colons and brackets there") from None


def _duration(value: Any, where: str) -> float:
    match = _DURATION.match(value) if isinstance(value, str) else None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    seconds = float(value) if number else float(match[1]) * _UNITS[match[2] or "s"] if match else math.nan
    if not (seconds > 0 and math.isfinite(seconds)):
        _fail(where, f"{_show(value)} is not a positive duration", "write e.g. 20s, 500ms, 2m or a number of seconds")
    return seconds


class _Parser:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.ids: dict[str, bool] = {}  # every id defined so far -> whether its fault heals itself (`duration`)

    def schedule(self, data: Any, path: Path) -> Schedule:
        top = _section(data, "", ("steps",), ("description", "seed"))
        description = top.get("description") or ""
        if not isinstance(description, str):
            _fail("description", f"expected text, got {_show(description)}", "write one line saying what it does")
        seed = None if top.get("seed") is None else _int(top["seed"], "seed", 0)
        return Schedule(path, description.strip(), seed, self.steps(top["steps"], "steps"))

    def steps(self, data: Any, where: str) -> tuple[Step, ...]:
        if not isinstance(data, list) or not data:
            _fail(where, f"expected a non-empty list of steps, got {_show(data)}", "write steps as `- wait: settled`")
        out: list[Step] = []
        for i, raw in enumerate(data, 1):
            if isinstance(raw, dict) and "after" in raw:
                out.append(Sleep(_duration(raw["after"], f"{where}.{i}.after")))
            out.append(self.step(raw, f"{where}.{i}"))
        return tuple(out)

    def step(self, raw: Any, at: str) -> Step:
        fix = f"start the step with one of: {', '.join(KINDS)}"
        if not isinstance(raw, dict):
            _fail(at, f"expected a step (a mapping), got {_show(raw)}", fix)
        kinds = [k for k in KINDS if k in raw]
        if not kinds:
            for key in raw:
                if close := difflib.get_close_matches(str(key), KINDS, n=1):
                    _fail(f"{at}.{key}", f"unknown key {key!r} (did you mean {close[0]!r}?)", fix)
            _fail(at, "it names no kind of step", fix)
        if len(kinds) > 1:
            _fail(f"{at}.{kinds[1]}", f"one step cannot both {kinds[0]} and {kinds[1]}", "split it into two steps")
        kind = kinds[0]
        if kind == "fault":
            return self.fault(raw, at, ("after",))
        required = (kind, "steps") if kind == "repeat" else (kind,)
        _section(raw, at, required, ("after", "timeout") if kind == "wait" else ("after",))
        value, here = raw[kind], f"{at}.{kind}"
        if kind == "sleep":
            return Sleep(_duration(value, here))
        if kind == "repeat":
            return Repeat(_int(value, here), self.steps(raw["steps"], f"{at}.steps"))
        if kind == "wait":
            return self.wait(value, here, _duration(raw["timeout"], f"{at}.timeout") if "timeout" in raw else None)
        if kind == "heal":
            return self.heal(value, here)
        at = here
        body = _section(value, at, ("count", "faults"), ("every",))
        count = _int(body["count"], f"{at}.count")
        every = _duration(body["every"], f"{at}.every") if "every" in body else None
        if not isinstance(body["faults"], list) or not body["faults"]:
            fix = "list the faults to draw from, e.g. `- {fault: crash, target: random:pacemaker}`"
            _fail(f"{at}.faults", f"expected a non-empty list of faults, got {_show(body['faults'])}", fix)
        return Chaos(count, every, tuple(self.fault(c, f"{at}.faults.{j}") for j, c in enumerate(body["faults"], 1)))

    def wait(self, value: Any, where: str, timeout: float | None) -> Wait:
        services = ", ".join(self.scenario.services) or "(none)"
        condition, _, arg = value.partition(":") if isinstance(value, str) else ("", "", "")
        if condition not in CONDITIONS or (condition == "up") != bool(arg):
            _fail(where, f"{_show(value)} is not a condition", f"wait for settled, quorate or up:SERVICE ({services})")
        if arg and arg not in self.scenario.services:
            _fail(where, f"the scenario has no service {arg!r}", f"wait for up:SERVICE with one of: {services}")
        return Wait(condition, arg or None, timeout)

    def heal(self, ref: Any, where: str) -> Heal:
        if ref != "all" and (not isinstance(ref, str) or ref not in self.ids):
            known = ", ".join(self.ids) or "none yet"
            fix = f"heal `all`, or give the fault step an `id:` and heal that (ids so far: {known})"
            _fail(where, f"no earlier step has the id {_show(ref)}", fix)
        if ref != "all" and self.ids[ref]:
            _fail(where, f"{ref} heals itself after its `duration`", f"drop this step, or the `duration:` of {ref}")
        return Heal(ref)

    def fault(self, raw: Any, at: str, extra: tuple[str, ...] = ()) -> FaultStep:
        if not isinstance(raw, dict):
            _fail(at, f"expected a fault (a mapping), got {_show(raw)}", "write `{fault: NAME, target: SELECTOR}`")
        name = raw.get("fault")
        if not isinstance(name, str) or name not in FAULTS:
            close = difflib.get_close_matches(str(name), FAULTS, n=1)
            problem = f"unknown fault {_show(name)}" if "fault" in raw else "missing required field"
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            _fail(f"{at}.fault", problem + hint, f"use one of: {', '.join(FAULTS)}")
        fields = [f for f in dataclasses.fields(FAULTS[name]) if f.name not in ("target", "chosen_by")]
        required = tuple(f.name for f in fields if f.default is dataclasses.MISSING)
        optional = tuple(f.name for f in fields if f.default is not dataclasses.MISSING)
        _section(raw, at, ("fault", "target", *required), ("id", "duration", *extra, *optional))
        if not isinstance(raw["target"], str) or not raw["target"].strip():
            fix = "write a node name or a selector such as holder:g_mysql, master or random:pacemaker"
            _fail(f"{at}.target", f"expected a node or selector, got {_show(raw['target'])}", fix)
        try:
            fault = make(name, raw["target"], **{f.name: raw[f.name] for f in fields if f.name in raw})
            fault.check(self.scenario)
        except FaultError as e:
            _fault_failed(e, name, at, ["target", *(f.name for f in fields)], self.scenario)
        duration = _duration(raw["duration"], f"{at}.duration") if "duration" in raw else None
        if duration is not None and type(fault).heal is Fault.heal:
            _fail(f"{at}.duration", f"{name} has nothing to heal", "drop `duration:`")
        step_id = raw.get("id")
        if step_id is not None:
            if not isinstance(step_id, str) or not _ID.match(step_id) or _DEFAULT_ID.match(step_id) or step_id == "all":
                fix = "use letters, digits, '-' and '_' (no '.'; `all` and step-N are taken)"
                _fail(f"{at}.id", f"{_show(step_id)} cannot be an id", fix)
            if step_id in self.ids:
                _fail(f"{at}.id", f"the id {step_id!r} is already used by an earlier step", "give each step its own id")
            self.ids[step_id] = duration is not None
        return FaultStep(fault, duration, step_id)


def _fault_failed(exc: FaultError, name: str, at: str, keys: list[str], scenario: Scenario) -> NoReturn:
    """A FaultError as the field it is about: `crash: target no node 'x': use ...` -> steps.2.target."""
    rest = str(exc).removeprefix(f"{name}: ")
    key = next((k for k in keys if rest.startswith(k)), None)
    key = key or next((k for k in reversed(keys) if re.search(rf"\b{k}\b", rest)), None)
    key = key or ("network" if "NIC" in rest and "network" in keys else "target")
    rest = rest.removeprefix(f"{key}: ").removeprefix("target ")
    problem, *fix = _FIX.split(rest, maxsplit=1)
    problem = problem if " " in problem else f"{problem} is not a valid {key}"  # `random:x:1: write random:x`
    signature = next(sig for n, sig, _ in catalogue() if n == name) or "no parameters"
    fallback = {
        "target": f"aim it at a node ({', '.join(scenario.nodes)}) or at a selector this scenario can resolve",
        "network": f"pick a network the target has a NIC on ({', '.join(scenario.networks)})",
    }.get(key, f"{name} takes a target and {signature}")
    _fail(f"{at}.{key}", problem, fix[0] if fix else fallback)


# --- expanding -----------------------------------------------------------------------------------
def plan(schedule: Schedule, seed: int) -> list[Action]:
    """The flat list of actions `schedule` runs; the same seed gives the same plan. `heal: ID` heals every copy of
    ID applied and not healed yet (inside a repeat: that iteration's), latest first; none left: nothing."""
    rng = random.Random(seed)
    out: list[Action] = []
    pending: dict[str, list[str]] = {}  # id -> the refs of its copies applied and not healed yet

    def apply(step: FaultStep, suffix: str) -> None:
        ref = f"{step.id}{suffix}" if step.id else f"step-{len(out) + 1}"
        out.append(Apply(step.fault, step.duration_s, ref))
        if step.id and step.duration_s is None:
            pending.setdefault(step.id, []).append(ref)

    def expand(steps: Iterable[Step], suffix: str) -> None:
        for step in steps:
            if isinstance(step, FaultStep):
                apply(step, suffix)
            elif isinstance(step, Repeat):
                for i in range(1, step.times + 1):
                    expand(step.steps, f"{suffix}.{i}")
            elif isinstance(step, Chaos):
                for i in range(1, step.count + 1):
                    if i > 1 and step.every_s:
                        out.append(Sleep(step.every_s))
                    apply(rng.choice(step.faults), f"{suffix}.{i}")
            elif isinstance(step, Heal) and step.ref != "all":
                out.extend(Heal(ref) for ref in reversed(pending.pop(step.ref, [])))  # every copy, latest first
            else:
                if isinstance(step, Heal):
                    pending.clear()
                out.append(step)

    expand(schedule.steps, "")
    return out


def describe(actions: Iterable[Action]) -> list[str]:
    """One line per action, for `halab run --dry-run`."""
    return [_line(a) for a in actions]


def _line(a: Action) -> str:
    if isinstance(a, Sleep):
        return f"+{a.seconds:.1f}s sleep"
    if isinstance(a, Heal):
        return f"heal {a.ref}"
    if isinstance(a, Wait):
        limit = f" (at most {a.timeout_s:.1f}s)" if a.timeout_s is not None else ""
        return f"wait {a.condition}{':' + a.arg if a.arg else ''}{limit}"
    return f"{_words(a.fault)} [{a.ref}]" + (f" for {a.duration_s:.1f}s" if a.duration_s else "")


def _words(fault: Fault) -> str:
    """`partition role:pacemaker:2 network=ring1 one_way=true`: parameters left at their default are not shown."""
    defaults = {f.name: f.default for f in dataclasses.fields(fault)}
    shown = [(k, v) for k, v in fault.params().items() if v not in (defaults[k], [])]
    text = [
        f"{k}={','.join(v) if isinstance(v, list) else str(v).lower() if isinstance(v, bool) else v}" for k, v in shown
    ]
    return " ".join([fault.name, fault.target, *text])
