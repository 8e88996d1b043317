"""Demo job types: each shows one behaviour an operator will meet."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from conveyor.context import JobContext
from conveyor.errors import UnrecoverableError


async def echo(ctx: JobContext, data: Any) -> Any:
    return data


async def sleep(ctx: JobContext, data: dict[str, Any]) -> str:
    steps = int(data.get("steps", 5))
    for step in range(1, steps + 1):
        await asyncio.sleep(float(data.get("seconds", 1.0)) / steps)
        await ctx.progress({"done": step, "total": steps})
    return f"slept in {steps} steps"


async def flaky(ctx: JobContext, data: dict[str, Any]) -> str:
    if random.random() < float(data.get("failure_rate", 0.5)):
        raise ConnectionError("the remote service did not answer (demo)")
    return f"succeeded on attempt {ctx.attempt}"


async def fail(ctx: JobContext, data: Any) -> None:
    raise UnrecoverableError("this job always fails: it shows the dead-letter state")


HANDLERS = {"echo": echo, "sleep": sleep, "flaky": flaky, "fail": fail}
