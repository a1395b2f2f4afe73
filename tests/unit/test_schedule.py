"""lab/schedule.py: fault schedules as data, one clear error per mistake, and a deterministic plan."""

from __future__ import annotations

import pickle
import random
import textwrap
from pathlib import Path

import pytest

from lab import faults
from lab.scenario import Scenario, load_scenario
from lab.schedule import (
    SCHEDULE_DIR,
    Apply,
    Chaos,
    FaultStep,
    Heal,
    Repeat,
    Schedule,
    ScheduleError,
    Sleep,
    Wait,
    describe,
    load_schedule,
    plan,
    schedule_path,
)

pytestmark = pytest.mark.unit

EXAMPLE = """
description: crash the MySQL holder, 20 s later cut ring1 one way for 10 s, then heal
seed: 7
steps:
  - wait: settled
  - fault: crash
    target: holder:g_mysql
    id: first-crash
  - sleep: 20s
  - fault: partition
    target: node2
    network: ring1
    one_way: true
    duration: 10s
  - heal: all
"""


@pytest.fixture(scope="module")
def ap() -> Scenario:
    return load_scenario("active-passive")


@pytest.fixture(scope="module")
def aa() -> Scenario:
    return load_scenario("active-active")


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, scenario: Scenario) -> Schedule:
    return load_schedule(write(tmp_path, text), scenario)


def steps(*lines: str) -> str:
    """A schedule whose steps are `lines` (each a YAML flow mapping or a block, already indented)."""
    return "steps:\n" + "\n".join(lines) + "\n"


# --- a valid schedule ----------------------------------------------------------------------------


def test_example_parses_and_plans(tmp_path: Path, ap: Scenario) -> None:
    s = load(tmp_path, EXAMPLE, ap)
    assert s.path == tmp_path / "s.yaml" and s.seed == 7 and s.description.startswith("crash the MySQL holder")
    crash, partition = (
        faults.make("crash", "holder:g_mysql"),
        faults.make("partition", "node2", network="ring1", one_way=True),
    )
    assert s.steps == (
        Wait("settled", None, None),
        FaultStep(crash, None, "first-crash"),
        Sleep(20.0),
        FaultStep(partition, 10.0, None),
        Heal("all"),
    )
    assert plan(s, 7) == [
        Wait("settled", None, None),
        Apply(crash, None, "first-crash"),
        Sleep(20.0),
        Apply(partition, 10.0, "step-4"),  # the default id is the Apply's 1-based position in the plan
        Heal("all"),
    ]
    assert describe(plan(s, 7)) == [
        "wait settled",
        "crash holder:g_mysql [first-crash]",
        "+20.0s sleep",
        "partition node2 network=ring1 one_way=true [step-4] for 10.0s",
        "heal all",
    ]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("20s", 20.0), ("500ms", 0.5), ("2m", 120.0), ("1.5s", 1.5), ("3", 3.0), (3, 3.0), (0.25, 0.25), ("1h", 3600.0)],
)
def test_durations(tmp_path: Path, ap: Scenario, text: object, seconds: float) -> None:
    assert load(tmp_path, steps(f"  - sleep: {text}"), ap).steps == (Sleep(seconds),)


def test_wait_conditions_and_timeout(tmp_path: Path, ap: Scenario) -> None:
    s = load(tmp_path, steps("  - wait: quorate", "  - {wait: 'up:mysql', timeout: 1m}"), ap)
    assert s.steps == (Wait("quorate", None, None), Wait("up", "mysql", 60.0))
    assert describe(plan(s, 1)) == ["wait quorate", "wait up:mysql (at most 60.0s)"]


def test_after_becomes_a_sleep_before_its_step(tmp_path: Path, ap: Scenario) -> None:
    s = load(tmp_path, steps("  - {fault: freeze, target: node1, after: 5s}", "  - {heal: all, after: 500ms}"), ap)
    assert plan(s, 1) == [Sleep(5.0), Apply(faults.make("freeze", "node1"), None, "step-2"), Sleep(0.5), Heal("all")]


def test_duration_stays_on_the_apply(tmp_path: Path, ap: Scenario) -> None:
    actions = plan(load(tmp_path, steps("  - {fault: crash, target: node1, duration: 20s}"), ap), 1)
    assert actions == [Apply(faults.make("crash", "node1"), 20.0, "step-1")]  # no Sleep + Heal: the player does it
    assert describe(actions) == ["crash node1 [step-1] for 20.0s"]


def test_repeat_expands_n_times_with_unique_ids(tmp_path: Path, ap: Scenario) -> None:
    text = """
    steps:
      - repeat: 3
        steps:
          - {fault: freeze, target: random:pacemaker, id: ice}
          - sleep: 1s
          - heal: ice
          - repeat: 2
            steps: [{fault: crash, target: node1, id: boom, duration: 2s}]
    """
    actions = plan(load(tmp_path, text, ap), 1)
    applies = [a for a in actions if isinstance(a, Apply)]
    assert [a.ref for a in applies] == [
        "ice.1", "boom.1.1", "boom.1.2", "ice.2", "boom.2.1", "boom.2.2", "ice.3", "boom.3.1", "boom.3.2"
    ]  # fmt: skip
    assert [a.ref for a in actions if isinstance(a, Heal)] == ["ice.1", "ice.2", "ice.3"]  # each its own iteration's
    assert len(actions) == 3 * (3 + 2)


def test_heal_after_a_repeat_heals_every_copy_latest_first(tmp_path: Path, ap: Scenario) -> None:
    text = steps(
        "  - repeat: 2", "    steps: [{fault: kill_service, target: node1, service: mysql, id: k}]", "  - heal: k"
    )
    assert [a.ref for a in plan(load(tmp_path, text, ap), 1)] == ["k.1", "k.2", "k.2", "k.1"]


def test_heal_all_leaves_nothing_to_heal_by_id(tmp_path: Path, ap: Scenario) -> None:
    text = steps("  - {fault: freeze, target: node1, id: f}", "  - heal: all", "  - heal: f")
    assert plan(load(tmp_path, text, ap), 1) == [Apply(faults.make("freeze", "node1"), None, "f"), Heal("all")]


def test_random_draws_count_faults_every_apart(tmp_path: Path, ap: Scenario) -> None:
    text = """
    steps:
      - random:
          count: 4
          every: 15s
          faults:
            - {fault: crash, target: random:pacemaker, duration: 20s, id: c}
            - {fault: freeze, target: random:pacemaker, duration: 8s}
    """
    s = load(tmp_path, text, ap)
    assert isinstance(s.steps[0], Chaos) and s.steps[0].count == 4 and len(s.steps[0].faults) == 2
    actions = plan(s, 3)
    assert [type(a) for a in actions] == [Apply, Sleep, Apply, Sleep, Apply, Sleep, Apply]
    assert all(a == Sleep(15.0) for a in actions[1::2])
    refs = [a.ref for a in actions if isinstance(a, Apply)]
    assert len(set(refs)) == 4 and all(r.startswith("step-") or r.startswith("c.") for r in refs)


def test_same_seed_same_plan_other_seed_other_plan(ap: Scenario) -> None:
    s = load_schedule("ap-chaos", ap)
    random.seed(1)
    first = plan(s, 42)
    random.seed(2)  # the global random source plays no part
    assert plan(s, 42) == first
    assert plan(s, 43) != first
    assert len({tuple(plan(s, seed)) for seed in range(10)}) > 1


def test_plan_leaves_random_targets_to_the_lab(ap: Scenario) -> None:
    targets = {a.fault.target for a in plan(load_schedule("ap-chaos", ap), 1) if isinstance(a, Apply)}
    assert targets == {"random:pacemaker", "service:mysql"}  # kill_service aims where mysqld runs


def test_schedule_is_frozen_and_hashable(tmp_path: Path, ap: Scenario) -> None:
    s = load(tmp_path, EXAMPLE, ap)
    with pytest.raises(AttributeError):
        s.seed = 3  # type: ignore[misc]
    hash(s)
    assert isinstance(Repeat(2, (Sleep(1.0),)), Repeat)


# --- one clear error per mistake -----------------------------------------------------------------

CRASH = "  - {fault: crash, target: node1}"
MISTAKES = [
    # (the file's text, the field, a piece of the problem)
    ("step: []", "step", "did you mean 'steps'"),
    ("description: x", "steps", "missing required field"),
    ("steps: []", "steps", "non-empty list"),
    ("steps: {wait: settled}", "steps", "non-empty list"),
    ("seed: seven\n" + steps(CRASH), "seed", "whole number"),
    ("description: [1]\n" + steps(CRASH), "description", "expected text"),
    (steps("  - settled"), "steps.1", "expected a step"),
    (steps("  - {waitt: settled}"), "steps.1.waitt", "did you mean 'wait'"),
    (steps("  - {nothing: 1}"), "steps.1", "no kind of step"),
    (steps("  - {wait: settled, sleep: 1s}"), "steps.1.sleep", "cannot both wait and sleep"),
    (steps("  - {sleep: 1s, timeout: 2s}"), "steps.1.timeout", "unknown key 'timeout'"),
    (steps("  - {sleep: 20 sec}"), "steps.1.sleep", "not a positive duration"),
    (steps("  - {sleep: 0}"), "steps.1.sleep", "not a positive duration"),
    (steps("  - {sleep: -5s}"), "steps.1.sleep", "not a positive duration"),
    (steps("  - {sleep: true}"), "steps.1.sleep", "not a positive duration"),
    (steps(CRASH, "  - {heal: all, after: soon}"), "steps.2.after", "not a positive duration"),
    (steps("  - {fault: crash, target: node1, duration: 10 s x}"), "steps.1.duration", "not a positive duration"),
    (steps("  - {wait: settled, timeout: forever}"), "steps.1.timeout", "not a positive duration"),
    (steps("  - {wait: calm}"), "steps.1.wait", "not a condition"),
    (steps("  - {wait: up}"), "steps.1.wait", "not a condition"),
    (steps("  - {wait: 'settled:x'}"), "steps.1.wait", "not a condition"),
    (steps("  - {wait: 'up:haproxy'}"), "steps.1.wait", "no service 'haproxy'"),
    (steps("  - {fault: crsh, target: node1}"), "steps.1.fault", "did you mean 'crash'"),
    (steps("  - {fault: crash}"), "steps.1.target", "missing required field"),
    (steps("  - {fault: [crash], target: node1}"), "steps.1.fault", "unknown fault"),
    (steps("  - {fault: crash, target: 3}"), "steps.1.target", "expected a node or selector"),
    (steps("  - {fault: crash, target: node1, percent: 3}"), "steps.1.percent", "unknown key"),
    (steps("  - {fault: partition, target: node1, netwrok: ring1}"), "steps.1.netwrok", "did you mean 'network'"),
    (steps("  - {fault: partition, target: node1}"), "steps.1.network", "missing required field"),
    (steps("  - {fault: partition, target: node1, network: ring1, one_way: maybe}"), "steps.1.one_way", "true or"),
    (steps("  - {fault: packet_loss, target: node1, network: ring0, percent: lots}"), "steps.1.percent", "whole"),
    (steps("  - {fault: crash, target: node9}"), "steps.1.target", "no node 'node9'"),
    (steps("  - {fault: crash, target: 'holder:g_nope'}"), "steps.1.target", "no group 'g_nope'"),
    (steps("  - {fault: crash, target: master}"), "steps.1.target", "no keepalived node"),
    (steps("  - {fault: crash, target: 'role:galera:1'}"), "steps.1.target", "no node has the role galera"),
    (steps("  - {fault: crash, target: 'random:pacemaker:1'}"), "steps.1.target", "is not a valid target"),
    (steps("  - {fault: cut, target: node1, network: mgmt}"), "steps.1.network", "no network 'mgmt'"),
    (steps("  - {fault: cut, target: client, network: ring1}"), "steps.1.network", "no NIC on ring1"),
    (steps("  - {fault: packet_loss, target: node1, network: ring0, percent: 150}"), "steps.1.percent", "between"),
    (
        steps("  - {fault: packet_loss, target: node1, network: ring0, percent: 5, direction: up}"),
        "steps.1.direction",
        "'up'",
    ),
    (steps("  - {fault: kill_service, target: node1, service: nginx}"), "steps.1.service", "unknown service"),
    (steps("  - {fault: partition, target: node1, network: ring0, others: [nodeX]}"), "steps.1.others", "nodeX"),
    (
        steps("  - {fault: start_service, target: node1, service: mysql, duration: 5s}"),
        "steps.1.duration",
        "nothing to heal",
    ),
    (steps("  - {heal: first}", "  - {fault: crash, target: node1, id: first}"), "steps.1.heal", "no earlier step"),
    (steps(CRASH, "  - {heal: step-1}"), "steps.2.heal", "no earlier step has the id 'step-1'"),
    (steps(CRASH, "  - {heal: [a]}"), "steps.2.heal", "no earlier step"),
    (steps("  - {fault: crash, target: node1, id: c, duration: 5s}", "  - heal: c"), "steps.2.heal", "heals itself"),
    (
        steps("  - {fault: crash, target: node1, id: c}", "  - {fault: freeze, target: node2, id: c}"),
        "steps.2.id",
        "already used",
    ),
    (steps("  - {fault: crash, target: node1, id: a.b}"), "steps.1.id", "cannot be an id"),
    (steps("  - {fault: crash, target: node1, id: step-3}"), "steps.1.id", "cannot be an id"),
    (steps("  - {fault: crash, target: node1, id: all}"), "steps.1.id", "cannot be an id"),
    (steps("  - {repeat: 0, steps: [{sleep: 1s}]}"), "steps.1.repeat", "whole number >= 1"),
    (steps("  - {repeat: 2}"), "steps.1.steps", "missing required field"),
    (steps("  - {repeat: 2, steps: []}"), "steps.1.steps", "non-empty list"),
    (
        steps("  - {repeat: 2, steps: [{sleep: 1s}, {fault: crash, target: nodeX}]}"),
        "steps.1.steps.2.target",
        "no node",
    ),
    (steps("  - {random: {count: 0, faults: [{fault: crash, target: node1}]}}"), "steps.1.random.count", ">= 1"),
    (steps("  - {random: {cout: 1, faults: []}}"), "steps.1.random.cout", "did you mean 'count'"),
    (steps("  - {random: {count: 1, faults: []}}"), "steps.1.random.faults", "non-empty list"),
    (
        steps("  - {random: {count: 1, every: never, faults: [{fault: crash, target: node1}]}}"),
        "steps.1.random.every",
        "not a positive duration",
    ),
    (
        steps(CRASH, "  - {random: {count: 1, faults: [{fault: crash, target: 'random:web'}]}}"),
        "steps.2.random.faults.1.target",
        "unknown role 'web'",
    ),
    (steps("  - {random: {count: 1, faults: [{target: node1}]}}"), "steps.1.random.faults.1.fault", "missing"),
    (steps("  - {random: {count: 1, faults: [crash]}}"), "steps.1.random.faults.1", "expected a fault"),
    (
        steps("  - {random: {count: 1, faults: [{fault: crash, target: node1, after: 1s}]}}"),
        "steps.1.random.faults.1.after",
        "unknown key 'after'",
    ),
    (
        steps(
            "  - {fault: crash, target: node1, id: x}",
            "  - {random: {count: 2, faults: [{fault: freeze, target: node1, id: x}]}}",
        ),
        "steps.2.random.faults.1.id",
        "already used",
    ),
]


@pytest.mark.parametrize(("text", "field", "problem"), MISTAKES)
def test_each_mistake_is_one_clear_error(tmp_path: Path, ap: Scenario, text: str, field: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ScheduleError) as info:
        load_schedule(path, ap)
    e = info.value
    assert (e.path, e.field) == (str(path), field), str(e)
    assert problem in e.problem, str(e)
    assert e.fix and str(e) == f"{path}: {field}: {e.problem}. Fix: {e.fix}"


def test_fault_errors_keep_their_fix(tmp_path: Path, ap: Scenario) -> None:
    e = pytest.raises(ScheduleError, load, tmp_path, steps("  - {fault: cut, target: node1, network: ring9}"), ap).value
    assert e.problem == "no network 'ring9'" and e.fix.startswith("use one of: ring0, ring1, management, replication")
    e = pytest.raises(ScheduleError, load, tmp_path, steps("  - {fault: crash, target: nodeX}"), ap).value
    assert "node1, node2, client" in e.fix


def test_unknown_fault_parameter_lists_the_allowed_keys(tmp_path: Path, ap: Scenario) -> None:
    text = steps("  - {fault: packet_loss, target: node1, network: ring0, percent: 5, precent: 3}")
    e = pytest.raises(ScheduleError, load, tmp_path, text, ap).value
    assert "did you mean 'percent'" in e.problem and "direction" in e.fix and "duration" in e.fix


def test_error_pickles(tmp_path: Path) -> None:
    e = ScheduleError(tmp_path / "x.yaml", "steps.1", "bad", "fix it")
    assert str(pickle.loads(pickle.dumps(e))) == str(e) == f"{tmp_path / 'x.yaml'}: steps.1: bad. Fix: fix it"
    assert isinstance(e, ValueError)


def test_not_yaml(tmp_path: Path, ap: Scenario) -> None:
    e = pytest.raises(ScheduleError, load, tmp_path, "steps: [\n  - {sleep: 1s", ap).value
    assert e.field.startswith("line ") and "not valid YAML" in e.problem


@pytest.mark.parametrize("text", ["", "- sleep: 1s\n", "just words\n"])
def test_not_a_mapping(tmp_path: Path, ap: Scenario, text: str) -> None:
    e = pytest.raises(ScheduleError, load, tmp_path, text, ap).value
    assert e.field == "(file)" and "expected a mapping" in e.problem


def test_duplicate_keys_are_refused_with_1_based_positions(tmp_path: Path, ap: Scenario) -> None:
    text = "steps:\n  - sleep: 1s\n  - fault: crash\n    target: node1\n    target: node2\n"
    e = pytest.raises(ScheduleError, load, tmp_path, text, ap).value
    assert e.field == "steps.2.target" and "duplicate key 'target' on line 5 (first on line 4)" in e.problem


def test_missing_file_lists_shipped_schedules(tmp_path: Path, ap: Scenario) -> None:
    e = pytest.raises(ScheduleError, load_schedule, tmp_path / "nope.yaml", ap).value
    assert e.field == "(file)" and "ap-crash-holder" in e.fix
    assert pytest.raises(ScheduleError, load_schedule, "no-such-schedule", ap).value.field == "(file)"


def test_bare_names_resolve_in_the_schedules_dir() -> None:
    assert schedule_path("ap-freeze") == schedule_path("ap-freeze.yaml") == SCHEDULE_DIR / "ap-freeze.yaml"


# --- the shipped schedules -----------------------------------------------------------------------

SHIPPED = sorted(SCHEDULE_DIR.glob("*.yaml"))


def scenario_of(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# scenario: "), f"{path}: the first line must be `# scenario: NAME`"
    return first.removeprefix("# scenario: ").strip()


def test_the_promised_schedules_ship() -> None:
    names = {p.stem for p in SHIPPED}
    assert names >= {
        "ap-crash-holder", "ap-kill-mysqld", "ap-standby", "ap-ring0-cut", "ap-freeze", "ap-crash-then-partition",
        "ap-packet-loss", "ap-chaos", "aa-crash-master", "aa-kill-haproxy", "aa-partition-galera", "aa-chaos",
    }  # fmt: skip


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_schedule_loads_against_its_scenario(path: Path) -> None:
    scenario = load_scenario(scenario_of(path))
    s = load_schedule(path, scenario)
    assert s.description
    for seed in (s.seed or 0, 1, 2):
        actions = plan(s, seed)
        assert actions == plan(s, seed) and len(describe(actions)) == len(actions)
        refs = [a.ref for a in actions if isinstance(a, Apply)]
        assert len(refs) == len(set(refs)), "every Apply has its own ref"
        for i, a in enumerate(actions):
            if isinstance(a, Heal):  # every heal names `all` or an earlier Apply that does not heal itself
                assert a.ref == "all" or any(
                    isinstance(b, Apply) and b.ref == a.ref and b.duration_s is None for b in actions[:i]
                )
            if isinstance(a, Apply):  # a user's scenario with other node names runs it unchanged
                assert a.fault.target not in scenario.nodes, f"{path.name} hard-codes node {a.fault.target}"


def test_chaos_schedules_carry_a_seed_and_vary_with_it(ap: Scenario, aa: Scenario) -> None:
    for name, scenario in (("ap-chaos", ap), ("aa-chaos", aa)):
        s = load_schedule(name, scenario)
        assert s.seed is not None and plan(s, s.seed) != plan(s, s.seed + 1)


def test_shipped_schedules_run_on_the_variants_too() -> None:
    """Selectors and network purposes, never a scenario's own names: a user's scenario runs them unchanged."""
    for topology, prefix in (("ap-variant", "ap-"), ("aa-variant", "aa-")):
        variant = load_scenario(f"scenarios/variants/{topology}.yaml")
        for path in sorted(SCHEDULE_DIR.glob(f"{prefix}*.yaml")):
            assert plan(load_schedule(path, variant), 1), path


def test_example_schedule_ships_with_selectors(ap: Scenario) -> None:
    actions = plan(load_schedule("ap-crash-then-partition", ap), 7)
    applies = [a for a in actions if isinstance(a, Apply)]
    assert [(a.fault.name, a.duration_s) for a in applies] == [("crash", None), ("partition", 10.0)]
    assert applies[1].fault.one_way and applies[1].fault.network == "replication"  # type: ignore[attr-defined]
    assert actions[-2:] == [Heal("all"), Wait("settled", None, None)]
