"""``conveyor worker``: run a worker process."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import logging

import click

from conveyor.cli.loading import load_handlers
from conveyor.config import load_settings
from conveyor.connection import Connection, connect
from conveyor.errors import ConfigError
from conveyor.middleware import Middleware
from conveyor.observability import standard_middleware
from conveyor.observability.logging import Format, configure
from conveyor.worker import Worker


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # the parent of a dotted name is missing
        return False


def serve_metrics(port: int) -> None:
    if not _installed("prometheus_client"):
        raise click.UsageError(
            "--metrics-port needs prometheus-client: pip install 'conveyor[metrics]'"
        )
    from conveyor.observability.metrics import serve

    try:
        serve(port)
    except OSError as exc:
        raise click.UsageError(f"--metrics-port {port}: {exc}") from exc


def observability_stack(connection: Connection) -> list[Middleware]:
    """``standard_middleware`` with the optional parts whose packages are installed."""
    return standard_middleware(
        connection,
        metrics=_installed("prometheus_client"),
        tracing=_installed("opentelemetry.trace"),
    )


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
@click.option(
    "--observe",
    is_flag=True,
    help="structured logs, correlation ids, metric history in Redis, and Prometheus metrics "
    "and OpenTelemetry spans when their packages are installed",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="serve this worker's Prometheus metrics on http://0.0.0.0:PORT/metrics (needs --observe)",
)
@click.option(
    "--log-format",
    type=click.Choice(["auto", "json", "console"]),
    default="auto",
    show_default=True,
    help="with --observe: console on a terminal, JSON elsewhere, unless set",
)
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
    observe: bool,
    metrics_port: int | None,
    log_format: Format,
) -> None:
    """Serve QUEUEs with the handlers of APP until SIGTERM or SIGINT."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    if metrics_port is not None and not observe:
        raise click.UsageError("--metrics-port needs --observe (the metrics come from it)")
    if observe:
        configure(settings.log_level, format=log_format)
    else:
        logging.basicConfig(
            level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
    handlers = load_handlers(app_path)
    if metrics_port is not None:
        serve_metrics(metrics_port)

    async def serve() -> None:
        connection = await connect(url, settings=settings)
        try:
            middleware = observability_stack(connection) if observe else []
            runner = Worker(
                connection, list(queues), handlers, concurrency=concurrency, lease=lease,
                stall_check_interval=stall_check_interval, max_stalls=max_stalls,
                shutdown_grace=shutdown_grace, schedules=schedules, middleware=middleware,
            )  # fmt: skip
            click.echo(f"worker {runner.id} serving {', '.join(queues)}", err=True)
            # Everything loaded so far (the app, its framework, OpenTelemetry's SDK) lives
            # as long as the process: the collector need not walk it again on every full
            # collection, which at thousands of jobs a second it otherwise does every few
            # seconds (in a big app, a pause of tens of ms each time).
            gc.freeze()
            await runner.run(install_signal_handlers=True)
        finally:
            await connection.close()

    asyncio.run(serve())
