"""Handlers for the worker processes the limiter tests start (``conveyor worker --app``)."""

from __future__ import annotations

from typing import Any

import conveyor


async def noop(ctx: conveyor.JobContext, data: Any) -> None:
    return None


HANDLERS = {"noop": noop}
