"""`halab replay BUNDLE [--provider P]`: rerun a bundled run and print both runs side by side (lab/replay.py).
Registered onto lab/cli.py's group with `cli.add_command(replay_command)`."""

from __future__ import annotations

from pathlib import Path

import click

from lab.replay import ReplayError, replay


class ReplayFailure(click.ClickException):
    """As lab/cli.py's Failure: one line on stderr, exit code 2 (defined here: lab/cli.py imports this module)."""

    exit_code = 2


@click.command(
    "replay",
    help="rerun a bundle (`halab bundle`'s .tar.gz, or a run directory) with the same scenario, profile, schedule "
    "and seed (a test suite's run: its recorded faults, in order), then print both runs side by side: verdict, "
    "each event's downtime and floor, and every check whose outcome changed. Exit 1 when the replay fails.",
)
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--provider", default=None, help="netns, libvirt or auto (default: the bundled run's)")
@click.option("--lab", "lab_name", default=None, help="the replay lab's name (default: the bundled run's)")
def replay_command(bundle: Path, provider: str | None, lab_name: str | None) -> None:
    try:
        verdict, comparison = replay(bundle, provider=provider, lab_name=lab_name, echo=click.echo)
    except ReplayError as exc:
        raise ReplayFailure(str(exc)) from None
    click.echo("")
    click.echo(comparison, nl=False)
    if verdict != "pass":
        raise click.exceptions.Exit(1)
