"""halab: bring a scenario's lab up, get into its nodes, break it, watch it, judge it.

\b
    halab up SCENARIO [--lab NAME]      halab provision LAB      halab down LAB
    halab list                          halab status LAB [--watch]
    halab exec [LAB] NODE -- CMD...     halab shell [LAB] NODE   halab logs LAB NODE [SERVICE]
    halab fault LAB FAULT TARGET ...    halab heal LAB ID|--all  (see `halab fault --help`)
    halab record LAB / halab check LAB  a hand-run judged as a test would judge it
    halab run SCENARIO SCHEDULE         up, provision, workloads, the schedule's faults, verdict, report
    halab report LAB                    halab bundle RUN|LAB (one tar.gz)  halab replay BUNDLE
    halab box build

LAB is a running lab's name (a scenario file's stem, or --lab NAME), or a scenario name or path. A running lab's
provider and profile are remembered (lab/registry.py): later commands need not repeat them.
Every failure is one line on stderr and exit code 2 (HALAB_DEBUG=1 adds the traceback)."""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path

import click

from lab import registry
from lab.box import add_box, build_box
from lab.box_commands import BoxError
from lab.box_inputs import DEFAULT_NAME
from lab.cli_bundle import bundle_command
from lab.cli_faults import fault_group, register_fault_commands
from lab.cli_replay import replay_command
from lab.providers import ProviderError
from lab.scenario import ScenarioError, load_scenario, scenario_path
from lab.session import Lab
from lab.wait import WaitTimeout
from provision import logs as node_logs


class Failure(click.ClickException):
    """An expected failure: printed as one line, exit code 2."""

    exit_code = 2


def open_lab(name: str, provider: str | None = None, profile: str | None = None, lab: str | None = None) -> Lab:
    """A running lab by name (its remembered scenario, provider and profile), else a scenario to bring up."""
    wanted = lab or (Path(name).stem if name.endswith(".yaml") else name)
    entries = [e for e in registry.find(wanted) if provider in (None, "auto", e.provider)]
    if len(entries) > 1:
        raise Failure(f"lab {wanted} runs on {' and '.join(e.provider for e in entries)}: pass --provider")
    if entries:
        e = entries[0]
        return Lab(e.scenario, provider=e.provider, profile=profile or e.profile, lab=e.lab)
    return Lab(name, provider=provider, profile=profile, lab=lab)


def running_lab(name: str, provider: str | None) -> Lab:
    lab = open_lab(name, provider)
    if not lab.provider.is_up():
        raise Failure(f"{lab.scenario.name} is not up on {lab.provider_name}: `halab up {name}` first")
    return lab


provider_opt = click.option("--provider", default=None, help="netns, libvirt or auto (default: the lab's, or auto)")
profile_opt = click.option("--profile", default=None, help="a profile of the scenario (default: the scenario's)")
lab_opt = click.option("--lab", "lab_name", default=None, help="the lab's name (default: the scenario file's stem)")


@click.group(help=__doc__, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    pass


@cli.command(help="create the scenario's networks and nodes")
@click.argument("scenario")
@provider_opt
@profile_opt
@lab_opt
def up(scenario: str, provider: str | None, profile: str | None, lab_name: str | None) -> None:
    lab = open_lab(scenario, provider, profile, lab_name)
    click.echo(f"provider: {lab.provider_name} ({lab.provider_reason})")
    lab.up()
    click.echo(
        f"{lab.scenario.name}: nodes {', '.join(lab.scenario.nodes)} up; next: halab provision {lab.scenario.name}"
    )


@cli.command(help="configure the scenario's services (brings the lab up first if needed)")
@click.argument("lab")
@provider_opt
@profile_opt
@lab_opt
def provision(lab: str, provider: str | None, profile: str | None, lab_name: str | None) -> None:
    the_lab = open_lab(lab, provider, profile, lab_name)
    if not the_lab.provider.is_up():
        the_lab.up()
    the_lab.provision()
    click.echo(the_lab.status())


@cli.command(help="remove everything the lab made (also after a killed run)")
@click.argument("lab")
@provider_opt
@lab_opt
def down(lab: str, provider: str | None, lab_name: str | None) -> None:
    the_lab = open_lab(lab, provider, lab=lab_name)
    the_lab.down()
    gone = {
        "netns": "namespaces, processes and loop devices",
        "libvirt": "VMs, libvirt networks and volumes, client namespaces, and the libvirt daemons the lab started",
    }
    click.echo(f"{the_lab.scenario.name} ({the_lab.provider_name}): {gone.get(the_lab.provider_name, 'all')} removed")


@cli.command("list", help="the labs that are up: scenario, topology, provider, profile, nodes, since")
def list_labs() -> None:
    entries = registry.entries()
    if not entries:
        click.echo("no labs are up")
        return
    row = "{:<20} {:<15} {:<8} {:<9} {:<12} {:<20} {}"
    click.echo(row.format("lab", "topology", "provider", "profile", "provisioned", "since", "scenario / nodes"))
    for e in entries:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.since))
        click.echo(
            row.format(e.lab, e.topology, e.provider, e.profile, "yes" if e.provisioned else "no", since, e.scenario)
        )
        click.echo(f"{'':20} nodes: {', '.join(e.nodes)}")


def status_text(lab: Lab) -> str:
    from lab.handrun import Ledger, recording

    lines = [lab.status().rstrip(), ""]
    disks = set(lab.provider.shared_disks().values())
    for node in lab.scenario.nodes:
        if not lab.provider.is_running(node):  # a crashed node's namespace keeps its addresses: it holds nothing
            lines.append(f"{node:12} DOWN")
            continue
        addrs, mounts = lab.provider.observe(node)
        vips = [f"{name} {v.address}" for name, v in lab.scenario.vips.items() if str(v.address) in addrs]
        shared = [f"{src} on {dst}" for src, dst in mounts if src in disks]
        lines.append(f"{node:12} running  VIPs: {', '.join(vips) or '-'}  shared mounts: {', '.join(shared) or '-'}")
    applied = Ledger(lab).applied()
    lines.append("")
    lines.append("applied faults: " + ("; ".join(f"[{i}] {f.describe()}" for i, f in applied) or "none"))
    rec = recording(lab)
    lines.append(f"recording: {rec} (`halab check {lab.scenario.name}` ends it)" if rec else "recording: no")
    return "\n".join(lines)


@cli.command(help="membership, quorum, resources, VIP holders, shared mounts and applied faults")
@click.argument("lab")
@provider_opt
@click.option("--watch", is_flag=True, help="refresh until Ctrl-C")
@click.option("--interval", default=2.0, show_default=True, help="seconds between refreshes with --watch")
def status(lab: str, provider: str | None, watch: bool, interval: float) -> None:
    the_lab = running_lab(lab, provider)
    if not watch:
        click.echo(status_text(the_lab))
        return
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    console = Console()

    def frame() -> Text:
        return Text(f"{time.strftime('%H:%M:%S')}  {the_lab.scenario.name}  (Ctrl-C ends)\n\n{status_text(the_lab)}")

    try:
        if console.is_terminal:
            with Live(frame(), console=console, screen=True, auto_refresh=False) as live:
                while True:
                    time.sleep(interval)
                    live.update(frame(), refresh=True)
        while True:  # not a terminal: one block per refresh, for a log
            click.echo(frame().plain + "\n")
            time.sleep(interval)
    except KeyboardInterrupt:
        pass


def _exec(lab: Lab, node: str, argv: list[str], *, tty: bool) -> None:
    if node not in lab.scenario.nodes:
        raise Failure(f"{lab.scenario.path}: nodes: no node {node!r}. Fix: use one of {', '.join(lab.scenario.nodes)}")
    full = lab.provider.command_argv(node, argv, tty=tty)
    sys.stdout.flush()
    os.execvp(full[0], full)  # stdin, stdout, stderr and the exit code are the command's own


def lab_and_node(lab: str, node: str | None, rest: tuple[str, ...]) -> tuple[str, str, tuple[str, ...]]:
    """LAB may be left out while exactly one lab is up: `halab exec node1 -- crm_mon -1` is that lab's node1 (a
    name of a running lab always wins over a node's)."""
    running = registry.entries()
    if registry.find(lab) or len(running) != 1 or lab not in running[0].nodes:
        if node is None:
            raise Failure(f"no node given. Fix: LAB NODE, or NODE alone while exactly one lab is up ({up_now()})")
        return lab, node, rest
    return running[0].lab, lab, (node, *rest) if node is not None else rest


def up_now() -> str:
    return "up now: " + (", ".join(sorted({e.lab for e in registry.entries()})) or "none")


@cli.command(
    "exec",
    help="run a command in a node: stdout, stderr and exit code passed through (LAB may be left "
    "out while one lab is up: halab exec node1 -- crm_mon -1)",
)
@click.argument("lab")
@click.argument("node", required=False)
@click.argument("command", nargs=-1)
@provider_opt
def exec_cmd(lab: str, node: str | None, command: tuple[str, ...], provider: str | None) -> None:
    lab, node, command = lab_and_node(lab, node, command)
    if not command:
        raise Failure(
            f"halab exec {lab} {node}: no command. Fix: halab exec LAB NODE -- CMD..., or NODE -- CMD... while "
            f"exactly one lab is up ({up_now()})"
        )
    _exec(running_lab(lab, provider), node, list(command), tty=sys.stdin.isatty())


@cli.command(help="an interactive root shell in a node (LAB may be left out while one lab is up)")
@click.argument("lab")
@click.argument("node", required=False)
@provider_opt
def shell(lab: str, node: str | None, provider: str | None) -> None:
    lab, node, rest = lab_and_node(lab, node, ())
    if rest:
        raise Failure(f"halab shell takes LAB NODE, not {' '.join(rest)}")
    the_lab = running_lab(lab, provider)
    _exec(the_lab, node, ["bash", "-l"] if the_lab.provider_name == "netns" else [], tty=True)


@cli.command(help="a node's logs: every log file, or one service's (corosync, pacemaker, mysql, galera, ...)")
@click.argument("lab")
@click.argument("node")
@click.argument("service", required=False)
@click.option("-n", "--lines", default=100, show_default=True, help="lines from the end of each file")
@click.option("-f", "--follow", is_flag=True, help="keep printing as the logs grow")
@provider_opt
def logs(lab: str, node: str, service: str | None, lines: int, follow: bool, provider: str | None) -> None:
    try:
        cmd = node_logs.command(service, lines=lines, follow=follow)
    except KeyError as exc:
        raise Failure(str(exc.args[0])) from None
    _exec(running_lab(lab, provider), node, ["sh", "-c", cmd], tty=False)


@cli.command(help="the latest report's paths, report.json and report.html (--json: report.json's content)")
@click.argument("lab")
@click.option("--json", "as_json", is_flag=True)
def report(lab: str, as_json: bool) -> None:
    from lab.session import REPO

    name = Path(lab).stem if lab.endswith(".yaml") else lab
    base = Path(os.environ.get("HALAB_REPORTS_DIR", REPO / "reports")) / name
    runs = sorted(base.glob("*/report.json"))
    if not runs:
        raise Failure(f"no reports under {base}: run `halab run`, `halab check` or a test suite first")
    if as_json:
        click.echo(runs[-1].read_text(), nl=False)
        return
    click.echo(str(runs[-1]))
    page = runs[-1].with_name("report.html")
    click.echo(str(page) if page.exists() else f"(no report.html in {page.parent}: the run predates it or failed)")


@cli.group(help="the offline Debian 12 libvirt box (lab/box.py)")
def box() -> None:
    pass


@box.command("build", help="build it from Debian packages (cached by package list), vagrant box add it")
@click.option("--out", default="/var/tmp/halab-box", show_default=True, help="where the box and its stamp go")
@click.option("--name", default=DEFAULT_NAME, show_default=True, help="Vagrant box name")
@click.option("--size-gb", default=4, show_default=True, help="virtual disk size")
@click.option("--force", is_flag=True, help="rebuild even when the cached box matches")
@click.option("--no-add", is_flag=True, help="only build, no `vagrant box add`")
def box_build(out: str, name: str, size_gb: int, force: bool, no_add: bool) -> None:
    built = build_box(Path(out), name=name, size_gb=size_gb, force=force)
    if not no_add:
        add_box(built, name)
        click.echo(f"vagrant box {name}: added from {built} (LAB_BOX={name})")


cli.add_command(fault_group)
cli.add_command(bundle_command)
cli.add_command(replay_command)
register_fault_commands(cli, open_lab, running_lab, Failure)

EXPECTED = (ScenarioError, ProviderError, WaitTimeout, BoxError, ValueError, LookupError, RuntimeError, OSError)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:  # the overview, not an error
        click.echo(cli.get_help(click.Context(cli, info_name="halab")))
        return 0
    try:
        # without standalone mode click returns a command's Exit code instead of raising it
        rc = cli.main(args=args, prog_name="halab", standalone_mode=False)
        return rc if isinstance(rc, int) else 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        print("halab: aborted", file=sys.stderr)
        return 130
    except click.UsageError as exc:
        cmd = exc.ctx.command_path if exc.ctx else "halab"
        print(f"halab: {exc.format_message()} (see `{cmd} --help`)", file=sys.stderr)
        return 2
    except click.ClickException as exc:
        print(f"halab: {exc.format_message()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("halab: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line, never a traceback, unless asked for
        if os.environ.get("HALAB_DEBUG") == "1":
            traceback.print_exc()
        first = (str(exc).strip().splitlines() or [""])[0]
        kind = "" if isinstance(exc, EXPECTED) else f"internal error ({type(exc).__name__}): "
        print(f"halab: {kind}{first or type(exc).__name__}", file=sys.stderr)
        return 2


__all__ = ["cli", "main", "open_lab", "scenario_path", "load_scenario"]

if __name__ == "__main__":
    sys.exit(main())
