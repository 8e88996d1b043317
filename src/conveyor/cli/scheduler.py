"""``conveyor scheduler``: fire schedules in a process of their own (run as many as you like)."""

from __future__ import annotations

import asyncio
import logging
import signal

import click

from conveyor.config import load_settings
from conveyor.connection import connect
from conveyor.errors import ConfigError
from conveyor.scheduler import Scheduler


@click.command()
@click.option("--queue", "-q", "queues", multiple=True, help="queue (default: all with schedules)")
@click.option("--url", default=None, help="Redis URL (default: CONVEYOR_REDIS_URL)")
@click.option("--poll", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
              help="longest wait between two looks at the due schedules (seconds)")  # fmt: skip
def scheduler(queues: tuple[str, ...], url: str | None, poll: float) -> None:
    """Enqueue the jobs of due schedules until SIGTERM or SIGINT.

    Any number of schedulers may run: each fire time still becomes exactly one job.
    """
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )

    async def serve() -> None:
        connection = await connect(url, settings=settings)
        runner = Scheduler(connection, list(queues) or None, poll=poll)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, runner.stop)
        try:
            await runner.run()
        finally:
            await connection.close()

    asyncio.run(serve())
