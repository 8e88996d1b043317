"""A known workload, run through a worker with the middleware under test."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import conveyor
from conveyor import Backoff, JobContext, JobOptions, Middleware, Queue, RetryLater, Worker
from tests.conftest import running, wait_for_state

OK, BAD, LIMITED = 5, 2, 1


@dataclass
class Outcome:
    """What the workload did: ids by kind, and the count each metric must show."""

    ids: dict[str, list[str]]
    attempts: int = OK + BAD * 2 + LIMITED * 2
    completed: int = OK + LIMITED
    failed: int = BAD * 2
    retried: int = BAD
    dead: int = BAD
    rate_limited: int = LIMITED


async def ok(ctx: JobContext, data: Any) -> str:
    return "ok"


async def bad(ctx: JobContext, data: Any) -> None:
    raise ValueError("always fails")


def limited_handler() -> Any:
    seen: set[str] = set()

    async def limited(ctx: JobContext, data: Any) -> str:
        if ctx.id not in seen:
            seen.add(ctx.id)
            raise RetryLater(0.01)
        return "done"

    return limited


async def run_workload(
    conn: conveyor.Connection,
    queue_name: str,
    middleware: Sequence[Middleware],
    **worker_options: Any,
) -> Outcome:
    """5 jobs that complete, 2 that fail twice and die, 1 rate-limited once then done."""
    queue = Queue(queue_name, conn, middleware=middleware)
    retry_now = JobOptions(attempts=2, backoff=Backoff.fixed(0))
    ids = {
        "ok": [(await queue.add("ok")).id for _ in range(OK)],
        "bad": [(await queue.add("bad", None, retry_now)).id for _ in range(BAD)],
        "limited": [(await queue.add("limited")).id for _ in range(LIMITED)],
    }
    handlers = {"ok": ok, "bad": bad, "limited": limited_handler()}
    worker = Worker(conn, [queue_name], handlers, middleware=middleware, **worker_options)
    async with running(worker):
        waits = [wait_for_state(queue, i, "completed") for i in ids["ok"] + ids["limited"]]
        waits += [wait_for_state(queue, i, "dead") for i in ids["bad"]]
        await asyncio.gather(*waits)
    return Outcome(ids)
