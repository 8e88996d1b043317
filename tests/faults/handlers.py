"""Handlers run by worker processes in the fault tests (importable by name).

They report to the test through Redis (``FAULT_REDIS_URL``): a hash of runs per job id, so a
test can tell how often a handler really ran, whatever happened to the process.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import redis.asyncio as aioredis

import conveyor

RUNS = "fault:runs"  # hash: job id -> handler starts
GO = "fault:go"  # list: a push lets one `late` handler return

_client: aioredis.Redis | None = None


def client() -> aioredis.Redis:
    global _client
    if _client is None:
        _client = aioredis.Redis.from_url(os.environ["FAULT_REDIS_URL"], decode_responses=True)
    return _client


async def hold(ctx: conveyor.JobContext, data: Any) -> str:
    """Counts the run, then holds the job for ``data['seconds']``."""
    await client().hincrby(RUNS, ctx.id, 1)
    await ctx.progress("started")  # an event the test can await
    await asyncio.sleep(float(data.get("seconds", 3600)))
    return f"held by {os.getpid()}"


async def late(ctx: conveyor.JobContext, data: Any) -> str:
    """Holds the job until the test pushes to ``fault:go``, then returns at once."""
    await client().hincrby(RUNS, ctx.id, 1)
    await ctx.progress("started")
    await client().blpop([GO], timeout=0)
    return f"late result from {os.getpid()}"


async def count(ctx: conveyor.JobContext, data: Any) -> None:
    await client().hincrby(RUNS, ctx.id, 1)


async def suicide(ctx: conveyor.JobContext, data: Any) -> None:
    """Kills its own worker process, every time: the job can only end by stalling out."""
    await client().hincrby(RUNS, ctx.id, 1)
    os.kill(os.getpid(), signal.SIGKILL)


HANDLERS = {"hold": hold, "late": late, "count": count, "suicide": suicide}
