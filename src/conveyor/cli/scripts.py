"""``conveyor scripts ls|prune``: the Conveyor function libraries on the server."""

from __future__ import annotations

import click

from conveyor.cli.common import audit, console, run, table, url_option
from conveyor.connection import Connection
from conveyor.scripts.libraries import installed, prune


@click.group()
def scripts() -> None:
    """List the Conveyor script libraries on the server; drop other versions' ones."""


@scripts.command("ls")
@url_option
def scripts_ls(url: str | None) -> None:
    async def action(conn: Connection) -> None:
        rows = [[lib.name, lib.functions, "this version" if lib.current else "other version"]
                for lib in await installed(conn)]  # fmt: skip
        table("script libraries", ["library", "functions", ""], rows)

    run(url, action)


@scripts.command("prune")
@url_option
def scripts_prune(url: str | None) -> None:
    """Drop the libraries of other Conveyor versions (e.g. once an upgrade is done); an
    older worker still running loads its own again on its next call."""

    async def action(conn: Connection) -> None:
        dropped = await prune(conn)
        if dropped:
            await audit(conn, "prune_scripts", {}, {"dropped": dropped})
        console.print(f"dropped {len(dropped)} librar{'y' if len(dropped) == 1 else 'ies'}"
                      + (f": {', '.join(dropped)}" if dropped else ""))  # fmt: skip

    run(url, action)
