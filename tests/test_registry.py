"""Registered queues and live workers, read back from a real Redis."""

from __future__ import annotations

from typing import Any

import conveyor
from conveyor import JobOptions, Queue
from conveyor.keys import GLOBAL_WORKERS
from conveyor.registry import live_workers, queue_names
from tests.conftest import wait_for_state


async def test_queue_names_lists_queues_once_written(
    conn: conveyor.Connection, queue_name: str
) -> None:
    assert queue_name not in await queue_names(conn)
    await Queue(queue_name, conn).add("x", None)
    names = await queue_names(conn)
    assert queue_name in names and names == sorted(names)


async def test_live_workers_reports_heartbeat_and_skips_expired(
    conn: conveyor.Connection, queue: Queue, start_worker: Any
) -> None:
    async def noop(ctx: conveyor.JobContext, data: Any) -> None:
        return None

    await conn.client.zadd(GLOBAL_WORKERS, {"ghost-worker": 1.0})  # hash long expired
    job = await queue.add("noop", None, JobOptions())
    async with start_worker({"noop": noop}, concurrency=3) as worker:
        await wait_for_state(queue, job.id, "completed")
        found = [w for w in await live_workers(conn) if w.id == worker.id]
        assert len(found) == 1
        info = found[0]
        assert info.queues == (queue.name,) and info.concurrency == 3
        assert 0 <= info.heartbeat_age < 30
        assert all(w.id != "ghost-worker" for w in await live_workers(conn))
    assert all(w.id != worker.id for w in await live_workers(conn))
    await conn.client.zrem(GLOBAL_WORKERS, "ghost-worker")
