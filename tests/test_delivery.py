"""Every job is completed exactly once when nothing fails, at volume and in bursts."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import conveyor
from conveyor import Queue, Retention, Worker
from conveyor.config import Settings
from tests.conftest import running

UNBOUNDED = Retention(count=None, age=None)


async def drain(queue: Queue, workers: list[Worker], expected: int) -> None:
    """Run ``workers`` until ``expected`` jobs completed (followed on the event stream)."""
    seen = 0

    async def follow() -> None:
        nonlocal seen
        async for event in queue.events(after="0", block_ms=200):
            seen += event.event == "completed"
            if seen >= expected:
                return

    async with running(workers[0]), running(workers[1]):
        await asyncio.wait_for(follow(), 120)


async def test_10000_jobs_added_in_bulk_are_each_completed_exactly_once(
    redis_server: conveyor.EmbeddedRedis, settings: Settings, queue_name: str
) -> None:
    runs: Counter[str] = Counter()

    async def job(ctx: conveyor.JobContext, data: Any) -> None:
        runs[ctx.id] += 1

    conns = [await conveyor.connect(redis_server.url, settings=settings) for _ in range(2)]
    queue = Queue(queue_name, conns[0])
    added = await queue.add_bulk([("job", i) for i in range(10_000)])
    workers = [
        Worker(conn, [queue_name], {"job": job}, concurrency=50, keep_completed=UNBOUNDED)
        for conn in conns
    ]
    await drain(queue, workers, 10_000)
    assert len(runs) == 10_000 and set(runs.values()) == {1}
    assert set(runs) == {job.id for job in added}
    counts = await queue.counts()
    assert counts["completed"] == 10_000 and counts["waiting"] == counts["active"] == 0
    assert sum(w.stats.completed for w in workers) == 10_000
    assert all(w.stats.lease_lost == 0 for w in workers)
    for conn in conns:
        await conn.close()


async def test_a_burst_of_1000_concurrent_adds_is_each_completed_exactly_once(
    redis_server: conveyor.EmbeddedRedis, settings: Settings, queue_name: str
) -> None:
    runs: Counter[str] = Counter()

    async def job(ctx: conveyor.JobContext, data: Any) -> None:
        runs[ctx.id] += 1

    conns = [await conveyor.connect(redis_server.url, settings=settings) for _ in range(2)]
    queue = Queue(queue_name, conns[0])
    workers = [
        Worker(conn, [queue_name], {"job": job}, concurrency=20, keep_completed=UNBOUNDED)
        for conn in conns
    ]
    async with running(workers[0]), running(workers[1]):
        added = await asyncio.gather(*(queue.add("job", i) for i in range(1000)))
        seen: set[str] = set()
        async for event in queue.events(after="0", block_ms=200):
            if event.event == "completed":
                seen.add(event.job_id)
                if len(seen) == 1000:
                    break
    assert set(runs) == {job.id for job in added}
    assert set(runs.values()) == {1}
    for conn in conns:
        await conn.close()
