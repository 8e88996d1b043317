"""Helpers of the admin commands: connect, run, audit, and print rich tables."""

from __future__ import annotations

import asyncio
import datetime
import getpass
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from conveyor.config import load_settings
from conveyor.connection import Connection, connect
from conveyor.errors import ConveyorError

T = TypeVar("T")
console = Console()

url_option = click.option(
    "--url",
    default=None,
    help="Redis URL (default: CONVEYOR_REDIS_URL)",
)


def run(url: str | None, action: Callable[[Connection], Awaitable[T]]) -> T:
    """Connect, run ``action``, close; engine errors become clean CLI errors."""

    async def main() -> T:
        connection = await connect(url, settings=load_settings())
        try:
            return await action(connection)
        finally:
            await connection.close()

    try:
        return asyncio.run(main())
    except ConveyorError as exc:
        raise click.ClickException(str(exc)) from exc


async def audit(connection: Connection, action: str, target: dict[str, Any], params: Any) -> None:
    """The CLI acts on Redis directly; it leaves the same audit entry an API call would."""
    try:
        from conveyor.server.audit import AuditTrail
        from conveyor.server.settings import load_server_settings
    except ImportError:
        return  # no server extra installed: there is no audit trail to keep
    settings = load_server_settings()
    trail = AuditTrail(
        connection, maxlen=settings.audit_maxlen, retention_days=settings.audit_retention_days
    )
    await trail.record(
        key_id="", key_name=f"cli:{getpass.getuser()}", role="admin", action=action,
        target=target, params=params, client="cli", status=200, outcome="ok",
    )  # fmt: skip


def when(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return datetime.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    view = Table(title=title)
    for column in columns:
        view.add_column(column)
    for row in rows:
        view.add_row(*("-" if cell is None else str(cell) for cell in row))
    Console().print(view)  # built per call: it reads the terminal width (COLUMNS) now
