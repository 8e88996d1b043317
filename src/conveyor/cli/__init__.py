"""The ``conveyor`` command line."""

from __future__ import annotations

import click

from conveyor.cli.demo import demo
from conveyor.cli.worker import worker


@click.group()
@click.version_option(package_name="conveyor")
def main() -> None:
    """Conveyor: a job queue on Redis with the operations layer built in."""


main.add_command(worker)
main.add_command(demo)
