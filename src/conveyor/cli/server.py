"""``conveyor server``: run the operations API with uvicorn."""

from __future__ import annotations

import os

import click

from conveyor.errors import ConfigError


@click.command()
@click.option("--host", default=None, help="bind address (default: CONVEYOR_SERVER_HOST)")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="default: 8080")
@click.option("--url", default=None, help="Redis URL (default: CONVEYOR_REDIS_URL)")
@click.option(
    "--workers", type=click.IntRange(1, 64), default=1, show_default=True,
    help="server processes; they share nothing but Redis",
)  # fmt: skip
def server(host: str | None, port: int | None, url: str | None, workers: int) -> None:
    """Serve the REST API, live events, health probes and metrics."""
    try:
        import uvicorn

        from conveyor.server import load_server_settings
    except ImportError as exc:
        raise click.ClickException(
            f"the server needs its extra: pip install 'conveyor[server]' ({exc})"
        ) from exc
    try:
        settings = load_server_settings()
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    bind_host = host or settings.host
    bind_port = settings.port if port is None else port
    if url:
        os.environ["CONVEYOR_REDIS_URL"] = url  # read again by each process's create_app
    click.echo(f"conveyor server on http://{bind_host}:{bind_port}/api/v1", err=True)
    uvicorn.run(
        "conveyor.server.app:create_app", factory=True, workers=workers, host=bind_host,
        port=bind_port, log_level="info", proxy_headers=False,
    )  # fmt: skip
