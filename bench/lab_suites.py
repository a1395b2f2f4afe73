"""Benchmark of the lab suites (`lab-active-passive`, `lab-active-active`, `lab-quorum`, `lab-api`): runs each once
and prints, from its reports, wall time per phase, memory per node, each measured downtime next to its floor and
limit (the aim: downtime/floor <= 1.5), what collecting the run's evidence cost (aim: <= 5 s per run on netns and
<= 10 % of its wall time) and the packed bundle's size (aim: a whole active/passive suite <= 20 MiB).

    python bench/lab_suites.py [--provider netns] [--suite active_passive|active_active|quorum|api|all] [-- pytest args]

For a Pacemaker topology it also prints each quorum transition (grouped by the nodes that made it together), its
delay after the trial's first fault, next to what the timers imply (corosync's token timeout as it runs, with
token_coefficient past two nodes; consensus; last_man_standing_window).
    python bench/lab_suites.py --schedule schedules/ap-crash-holder.yaml [--scenario active-passive]

The second form runs `halab run` once and prints the same figures plus the schedule's own overhead.

Figures, not asserts: the suite's own tests decide pass/fail."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as `python bench/lab_suites.py`, halab installed or not

from lab.report import vip_move_text  # noqa: E402


def run_suite(provider: str, marker: str, reports: Path, extra: list[str]) -> tuple[float, int]:
    env = {**os.environ, "LAB_PROVIDER": provider, "HALAB_REPORTS_DIR": str(reports)}
    t0 = time.monotonic()
    rc = subprocess.call(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-m",
            marker,
            "tests/acceptance",
            "-p",
            "no:cacheprovider",
            *extra,
        ],
        cwd=REPO,
        env=env,
    )
    return time.monotonic() - t0, rc


def print_report(r: dict) -> None:
    print(
        f"\n== {r['scenario']} / {r['provider']} / profile {r['profile']}: verdict {r['verdict']}, {r['duration_s']} s"
    )
    print("phase                         wall_s")
    for phase, secs in r.get("timings_s", {}).items():
        print(f"  {phase:<28}{secs:>7.2f}")
    print("node      RSS_MiB  PSS_MiB  resident_MiB   (after provisioning; RSS double-counts shared pages, PSS")
    print("                                           shares them with other nodes; resident: each page once)")
    for node, m in r.get("memory_kib", {}).items():
        resident = f"{m['resident'] / 1024:>13.0f}" if "resident" in m else f"{'-':>13}"
        print(f"  {node:<8}{m['rss'] / 1024:>8.0f} {m['pss'] / 1024:>8.0f} {resident}")
    print("fault          target       service    downtime_ms floor_ms ratio limit_ms  bound_ms  VIP")
    for e in r["events"]:
        ratio = f"{e['downtime_ms'] / e['floor_ms']:.2f}" if e.get("floor_ms") and e["downtime_ms"] else "-"
        vip = vip_move_text(e.get("vip"), e.get("vip_from"), e.get("vip_to"), e.get("flap", False)) or "-"
        print(
            f"  {e['fault']:<13}{e['target']:<13}{e['service']:<10}{str(e['downtime_ms']):>11} "
            f"{str(e.get('floor_ms') or '-'):>8} {ratio:>5} {str(e.get('limit_ms') or '-'):>8} "
            f"{str(e.get('bound_ms') or '-'):>9}  {vip}"
        )
    for note in r.get("notes", []):
        if note.startswith("schedule"):
            print(f"  {note}")
    print("floor (lab/floors.py): token + consensus where membership changes, the measured ops of the members")
    print("before the service, the service's start request until the clients' first answer: a lower bound.")


def print_quorum(r: dict) -> None:
    from lab import bounds
    from lab.checks.quorum import describe_transition, grouped
    from lab.scenario import ScenarioError, load_scenario

    if not r.get("quorum"):
        return
    try:
        opts = load_scenario(r["scenario"]).options(r["profile"])
        window = opts.last_man_standing_window_ms or 10000
        lms = f"last_man_standing_window {window} ms" if opts.last_man_standing else ""
        print(
            f"quorum transitions (timers: token {bounds.token_timeout_ms(opts)} ms as corosync runs it, consensus "
            f"{opts.consensus_ms} ms, membership {bounds.membership_ms(opts)} ms{', ' + lms if lms else ''})"
        )
    except ScenarioError:  # a lab named otherwise than its scenario: the timers are in its bundle's scenario
        print("quorum transitions")
    by_trial: dict[str, list[dict]] = {}
    for row in r["quorum"]:
        by_trial.setdefault(row["trial"], []).append(row)
    for trial, rows in by_trial.items():
        origin = rows[0]["time"] - rows[0]["at_ms"] / 1000  # the trial's first fault
        print(f"  {trial}:")
        for g in grouped(rows):
            print(f"    {describe_transition(g, origin)}")


def print_bundle(run_dir: Path, r: dict) -> None:
    """What the run's evidence cost (bundle.json's own timings) and its packed size (`halab bundle`)."""
    from lab import bundle

    manifest = json.loads((run_dir / "bundle.json").read_text()) if (run_dir / "bundle.json").exists() else {}
    spent = sum(v for v in manifest.get("timings_s", {}).values() if isinstance(v, (int, float)))
    wall = r.get("duration_s") or 0
    share = f"{100 * spent / wall:.1f} % of the run's {wall} s" if wall else "no wall time"
    packed = bundle.pack(run_dir, run_dir.parent / f"{run_dir.name}.bench.tar.gz")
    size = packed.path.stat().st_size
    packed.path.unlink()
    print(f"evidence: {spent:.2f} s collected over {len(manifest.get('stages', []))} stages ({share}); ", end="")
    print(f"bundle packed: {size / 2**20:.2f} MiB")


def run_schedule(provider: str, scenario: str, schedule: str) -> int:
    out = REPO / "reports" / "bench" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    env = {**os.environ, "LAB_PROVIDER": provider, "HALAB_REPORTS_DIR": str(out)}
    t0 = time.monotonic()
    halab = [sys.executable, "-c", "import sys; from lab.cli import main; sys.exit(main())"]
    rc = subprocess.call([*halab, "run", scenario, schedule, "--lab", "bench-schedule", "--down"], cwd=REPO, env=env)
    wall = time.monotonic() - t0
    for path in sorted(out.glob("*/*/report.json")):
        print_report(r := json.loads(path.read_text()))
        print_bundle(path.parent, r)
    print(f"halab run {schedule}: {wall:.1f} s wall (up, provision, the schedule, checks, down); exit {rc}")
    return rc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--provider", default=os.environ.get("LAB_PROVIDER", "netns"))
    ap.add_argument("--suite", default="all", choices=["active_passive", "active_active", "quorum", "api", "all"])
    ap.add_argument("--schedule", help="run this schedule with `halab run` instead of the suites")
    ap.add_argument("--scenario", default="active-passive", help="the scenario for --schedule")
    ap.add_argument("extra", nargs="*")
    args = ap.parse_args()
    if args.schedule:
        return run_schedule(args.provider, args.scenario, args.schedule)
    suites = ["active_passive", "active_active", "quorum", "api"] if args.suite == "all" else [args.suite]
    out = REPO / "reports" / "bench" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    walls, worst = {}, 0
    for suite in suites:
        walls[suite], rc = run_suite(args.provider, suite, out / suite, args.extra)
        worst = worst or rc
    for path in sorted(out.glob("*/*/*/report.json")):
        print_report(r := json.loads(path.read_text()))
        print_quorum(r)
        print_bundle(path.parent, r)
    for suite, wall in walls.items():
        print(f"suite {suite}: {wall:.1f} s wall")
    print(f"pytest exit {worst}; reports under {out}")
    return worst


if __name__ == "__main__":
    sys.exit(main())
