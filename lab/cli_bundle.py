"""`halab bundle RUN`: pack a run directory (or a lab's latest run) into one tar.gz, grepped for the lab's secrets
(lab/bundle.py). Registered onto lab/cli.py's group with `cli.add_command(bundle_command)`."""

from __future__ import annotations

from pathlib import Path

import click

from lab import bundle


class BundleFailure(click.ClickException):
    """As lab/cli.py's Failure: one line on stderr, exit code 2 (defined here: lab/cli.py imports this module)."""

    exit_code = 2


@click.command(
    "bundle",
    help="pack a run into one <run-dir>.tar.gz, grepped for the lab's secrets first. RUN is a run directory "
    "(reports/<lab>/<run-id>) or a lab's name: its latest run under the reports dir.",
)
@click.argument("run")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="where the archive goes (default: beside the run directory, named after it)",
)
def bundle_command(run: str, out: Path | None) -> None:
    try:
        packed = bundle.pack(bundle.resolve(run), out)
    except bundle.BundleError as exc:
        raise BundleFailure(str(exc)) from None
    click.echo(packed.summary())
