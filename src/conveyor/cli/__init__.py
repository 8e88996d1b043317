"""The ``conveyor`` command line."""

from __future__ import annotations

import click

from conveyor.cli.admin import dlq, jobs, queues
from conveyor.cli.demo import demo
from conveyor.cli.keys import audit_log, keys
from conveyor.cli.scheduler import scheduler
from conveyor.cli.scripts import scripts
from conveyor.cli.server import server
from conveyor.cli.worker import worker


@click.group()
@click.version_option(package_name="conveyor")
def main() -> None:
    """Conveyor: a job queue on Redis with the operations layer built in."""


main.add_command(worker)
main.add_command(scheduler)
main.add_command(demo)
main.add_command(server)
main.add_command(queues)
main.add_command(jobs)
main.add_command(dlq)
main.add_command(keys)
main.add_command(audit_log)
main.add_command(scripts)
