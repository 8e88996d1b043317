"""``conveyor demo``: see Conveyor work in one command."""

from __future__ import annotations

import click


@click.command()
@click.option("--url", default=None, help="Redis URL; default: an embedded server")
@click.option(
    "--duration", type=click.FloatRange(min=0.1), default=None, help="stop after N seconds"
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0.1, max=10_000),
    default=20.0,
    show_default=True,
    help="jobs enqueued per second",
)
@click.option("--plain", is_flag=True, help="print events line by line instead of a live table")
def demo(url: str | None, duration: float | None, rate: float, plain: bool) -> None:
    """Start a worker with demo job types, enqueue a mix, and show what happens live."""
    from conveyor.demo.run import main

    main(url, duration, rate, plain)
