import pytest

from lab.compare import changed_checks, side_by_side

pytestmark = pytest.mark.unit


def _report(verdict: str, events: list[dict], checks: dict[str, bool]) -> dict:
    return {
        "scenario": "active-passive",
        "provider": "netns",
        "profile": "guide",
        "started_at": "2026-12-01T10:00:00.000Z",
        "verdict": verdict,
        "events": events,
        "checks": [{"name": n, "passed": p, "detail": ""} for n, p in checks.items()],
    }


def _ev(fault: str, service: str, down: int | None, floor: int | None = None) -> dict:
    return {"fault": fault, "target": "node1", "service": service, "downtime_ms": down, "floor_ms": floor}


A = _report("pass", [_ev("crash", "mysql", 3900, 3100), _ev("crash", "rabbitmq", 0)], {"lost-writes": True, "x": True})
B = _report("fail", [_ev("crash", "mysql", None, 3050), _ev("crash", "rabbitmq", 0)], {"lost-writes": False, "y": True})


def test_changed_checks_names_flips_and_checks_of_one_run_only() -> None:
    assert changed_checks(A, B) == [("lost-writes", "pass", "FAIL"), ("x", "pass", "absent"), ("y", "absent", "pass")]
    assert changed_checks(A, A) == []


def test_side_by_side_lines_up_each_event_with_both_downtimes_and_floors() -> None:
    text = side_by_side(A, B)
    assert "verdict pass" in text.splitlines()[0] and "verdict fail" in text.splitlines()[1]
    mysql = next(line for line in text.splitlines() if line.startswith("crash") and "mysql" in line)
    assert mysql.split()[-4:] == ["3900", "3100", "never", "3050"]
    assert "checks whose outcome changed (3)" in text


def test_events_of_one_run_only_still_show() -> None:
    b = _report("pass", [_ev("crash", "mysql", 4000), _ev("heal:crash", "mysql", 1200)], {"x": True})
    text = side_by_side(A, b)
    heal = next(line for line in text.splitlines() if line.startswith("heal:crash"))
    assert heal.split()[-4:] == ["-", "-", "1200", "-"]
    assert "no check changed" not in text


def test_identical_runs_say_no_check_changed() -> None:
    assert "no check changed its outcome (2 in original, 2 in replay)" in side_by_side(A, A)


def test_trial_prefixes_are_stripped_so_a_suite_and_its_replay_compare() -> None:
    suite = _report("pass", [], {"crash-active: lost-writes:mysql": True, "standby: lost-writes:mysql": False})
    again = _report("pass", [], {"schedule-replay: lost-writes:mysql": False})
    prefixes = ("crash-active", "standby", "schedule-replay")
    assert changed_checks(suite, again, prefixes) == []  # one of the suite's failed: the name failed in both
    assert "no check changed its outcome (1 in original, 1 in replay)" in side_by_side(suite, again, prefixes=prefixes)


def test_a_selector_that_chose_another_node_still_lines_up() -> None:
    b = _report("pass", [{**_ev("crash", "mysql", 3300, 2700), "target": "node2"}], {"x": True})
    line = next(x for x in side_by_side(A, b).splitlines() if x.startswith("crash") and "mysql" in x)
    assert line.split() == ["crash", "node1|node2", "mysql", "3900", "3100", "3300", "2700"]
