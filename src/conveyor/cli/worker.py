"""``conveyor worker``: run a worker process."""

from __future__ import annotations

import asyncio
import logging

import click

from conveyor.cli.loading import load_handlers
from conveyor.config import load_settings
from conveyor.connection import connect
from conveyor.errors import ConfigError
from conveyor.worker import Worker


@click.command()
@click.option("--app", "app_path", required=True, help="module:attribute of the handler mapping")
@click.option("--queue", "-q", "queues", multiple=True, required=True, help="queue to serve")
@click.option("--url", default=None, help="Redis URL (default: CONVEYOR_REDIS_URL)")
@click.option("--concurrency", "-c", default=10, show_default=True, type=click.IntRange(1))
@click.option("--lease", type=click.FloatRange(min=0.05), default=None, help="lease seconds")
@click.option("--stall-check-interval", type=click.FloatRange(min=0.01), default=None)
@click.option("--max-stalls", type=click.IntRange(0), default=None)
@click.option("--shutdown-grace", type=click.FloatRange(min=0), default=None)
@click.option("--schedules", is_flag=True, help="also fire the schedules of these queues")
def worker(
    app_path: str,
    queues: tuple[str, ...],
    url: str | None,
    concurrency: int,
    lease: float | None,
    stall_check_interval: float | None,
    max_stalls: int | None,
    shutdown_grace: float | None,
    schedules: bool,
) -> None:
    """Serve QUEUEs with the handlers of APP until SIGTERM or SIGINT."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    handlers = load_handlers(app_path)

    async def serve() -> None:
        connection = await connect(url, settings=settings)
        try:
            runner = Worker(
                connection, list(queues), handlers, concurrency=concurrency, lease=lease,
                stall_check_interval=stall_check_interval, max_stalls=max_stalls,
                shutdown_grace=shutdown_grace, schedules=schedules,
            )  # fmt: skip
            click.echo(f"worker {runner.id} serving {', '.join(queues)}", err=True)
            await runner.run(install_signal_handlers=True)
        finally:
            await connection.close()

    asyncio.run(serve())
