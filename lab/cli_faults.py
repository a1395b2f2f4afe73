"""The CLI's fault side: `halab fault LAB FAULT TARGET ...` (one subcommand per fault of lab/faults.py's registry,
its help and options taken from the fault's own fields), `halab heal`, `halab record` / `halab check`, and
`halab run SCENARIO SCHEDULE`."""

from __future__ import annotations

import dataclasses
import random
import typing
from collections.abc import Callable
from typing import Any

import click

from lab import handrun, registry
from lab.faults import FAULTS, Fault, make

TARGET_HELP = (
    "TARGET is a node name or a selector resolved when applied: holder:GROUP, service:NAME, vip:NAME, master, "
    "role:ROLE:N, "
    "random:ROLE"
)
ctx_lab = click.make_pass_decorator(dict)


@click.group("fault", help=f"apply a fault to a running lab (recorded; `halab heal` undoes it). {TARGET_HELP}.")
@click.argument("lab")
@click.pass_context
def fault_group(ctx: click.Context, lab: str) -> None:
    ctx.obj = {"lab": lab}


def _option(f: dataclasses.Field[Any], hint: Any) -> Callable[[click.Command], click.Command]:
    flag = "--" + f.name.replace("_", "-")
    required = f.default is dataclasses.MISSING
    if hint is bool:
        return click.option(flag, f.name, is_flag=True, help=f"{f.name} (default off)")
    if typing.get_origin(hint) is tuple:
        return click.option(flag, f.name, default="", help="comma-separated targets (default: every other node)")
    kind = int if hint is int else str
    default = None if required else f.default
    return click.option(flag, f.name, type=kind, required=required, default=default, show_default=not required)


def _fault_command(
    name: str, cls: type[Fault], open_lab: Callable[..., Any], failure: type[Exception]
) -> click.Command:
    hints = typing.get_type_hints(cls)

    @ctx_lab
    def run(obj: dict, target: str, provider: str | None, **params: Any) -> None:
        lab = open_lab(obj["lab"], provider)
        params = {k: v for k, v in params.items() if v not in (None, "")}
        f = make(name, target, **params)
        f.check(lab.scenario)  # a typo is refused before anything else is looked at
        if not lab.provider.is_up():
            raise failure(f"{lab.scenario.name} is not up on {lab.provider_name}: `halab up {obj['lab']}` first")
        ledger = handrun.Ledger(lab)
        entry_id, applied = ledger.apply(f)
        rec = "recorded in the hand-run" if handrun.recording(lab) else "not recording (`halab record` for a verdict)"
        click.echo(f"[{entry_id}] {applied.describe()}: applied; {rec}; `halab heal {lab.scenario.name} {entry_id}`")

    cmd = click.command(name, help=f"{cls.help}. {TARGET_HELP}.")(run)
    cmd = click.argument("target")(cmd)
    cmd = click.option("--provider", default=None, help="netns or libvirt (default: the lab's)")(cmd)
    for f in reversed([f for f in dataclasses.fields(cls) if f.name not in ("target", "chosen_by")]):
        cmd = _option(f, hints[f.name])(cmd)
    return cmd


def register_fault_commands(
    cli: click.Group, open_lab: Callable[..., Any], open_running: Callable[..., Any], failure: type[Exception]
) -> None:
    for name, cls in FAULTS.items():
        fault_group.add_command(_fault_command(name, cls, open_lab, failure))

    @cli.command(help="heal one applied fault by the id `halab fault` printed, or every one (--all)")
    @click.argument("lab")
    @click.argument("fault_id", required=False, type=int)
    @click.option("--all", "heal_all", is_flag=True, help="every applied fault, newest first")
    @click.option("--provider", default=None)
    def heal(lab: str, fault_id: int | None, heal_all: bool, provider: str | None) -> None:
        the_lab = open_running(lab, provider)
        ledger = handrun.Ledger(the_lab)
        ids = [i for i, _ in reversed(ledger.applied())] if heal_all else [fault_id] if fault_id else []
        if not ids:
            applied = "; ".join(f"[{i}] {f.describe()}" for i, f in ledger.applied()) or "none"
            raise failure(f"name a fault id or --all (applied: {applied})")
        for i in ids:
            f = ledger.heal(i)
            click.echo(f"[{i}] {f.describe()}: healed")

    @cli.command(help="start the scenario's workloads and the observer in the background, for `halab check`")
    @click.argument("lab")
    @click.option("--provider", default=None)
    def record(lab: str, provider: str | None) -> None:
        the_lab = open_running(lab, provider)
        trial_dir = handrun.start(the_lab)
        click.echo(
            f"recording into {trial_dir}; apply faults with `halab fault {the_lab.scenario.name} ...`, then "
            f"`halab check {the_lab.scenario.name}`"
        )

    @cli.command(help="stop the recording and print the verdict a test would give (exit 1 when it fails)")
    @click.argument("lab")
    @click.option("--provider", default=None)
    def check(lab: str, provider: str | None) -> None:
        the_lab = open_running(lab, provider)
        still = handrun.Ledger(the_lab).applied()
        if still:
            listed = "; ".join(f"[{i}] {f.describe()}" for i, f in still)
            raise failure(f"faults still applied: {listed}. Fix: `halab heal {the_lab.scenario.name} --all` first")
        result = handrun.stop(the_lab)
        click.echo(result["table"])
        click.echo(f"report: {result['report']}")
        if result["verdict"] != "pass":
            raise click.exceptions.Exit(1)

    @cli.command(help="up (or reuse), provision, start the workloads, play SCHEDULE, check, report")
    @click.argument("scenario")
    @click.argument("schedule")
    @click.option("--provider", default=None, help="netns, libvirt or auto")
    @click.option("--profile", default=None, help="a profile of the scenario")
    @click.option("--lab", "lab_name", default=None, help="the lab's name (default: the scenario file's stem)")
    @click.option("--seed", type=int, default=None, help="every random choice (default: the schedule's, else new)")
    @click.option("--dry-run", is_flag=True, help="print the planned steps and stop")
    @click.option("--down", "down_after", is_flag=True, help="remove the lab afterwards")
    def run(
        scenario: str,
        schedule: str,
        provider: str | None,
        profile: str | None,
        lab_name: str | None,
        seed: int | None,
        dry_run: bool,
        down_after: bool,
    ) -> None:
        from lab import play
        from lab import schedule as sched
        from lab.scenario import load_scenario, renamed

        running = [e for e in registry.find(scenario) if provider in (None, "auto", e.provider)] if not lab_name else []
        if running:  # a running lab's name (e.g. one brought up with --lab): its scenario and name
            scenario, lab_name = running[0].scenario, running[0].lab
        sc = renamed(load_scenario(scenario), lab_name)
        plan_of = sched.load_schedule(schedule, sc)
        # one seed for the whole run, printed so a run can be repeated: --seed, else the schedule's, else a new one
        chosen = seed if seed is not None else plan_of.seed if plan_of.seed is not None else random.randrange(2**31)
        actions = sched.plan(plan_of, chosen)
        if dry_run:
            click.echo(f"seed {chosen}")
            click.echo("\n".join(sched.describe(actions)))
            return
        lab = open_lab(scenario, provider, profile, lab_name)
        lab.seed = chosen
        lab.rng.seed(chosen)
        try:
            verdict = play.run(lab, plan_of, actions, echo=click.echo)
        finally:
            if down_after:
                lab.down()
        if verdict != "pass":
            raise click.exceptions.Exit(1)
