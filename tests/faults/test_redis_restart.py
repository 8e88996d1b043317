"""Redis killed and restarted (AOF on) under load: nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

import conveyor
from conveyor import EmbeddedRedis, JobOptions, Queue, Retention, Worker
from conveyor.config import Settings
from conveyor.connection import TRANSIENT_ERRORS
from tests.conftest import running


class Producer:
    """Adds jobs with ids j0, j1, ... and retries the same id until Redis acknowledges it."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self.acked: list[str] = []
        self.failures = 0
        self._progress = asyncio.Condition()
        self._stop = False

    async def run(self) -> None:
        while not self._stop:
            job_id = f"j{len(self.acked)}"
            try:
                await self.queue.add("job", {"n": len(self.acked)}, JobOptions(job_id=job_id))
            except TRANSIENT_ERRORS:
                self.failures += 1  # an add that may or may not have landed: same id again
                continue
            async with self._progress:
                self.acked.append(job_id)
                self._progress.notify_all()

    async def reach(self, count: int) -> None:
        async with self._progress:
            await asyncio.wait_for(self._progress.wait_for(lambda: len(self.acked) >= count), 60)

    def stop(self) -> None:
        self._stop = True


async def completed_ids(queue: Queue, wanted: set[str], timeout: float = 60) -> set[str]:
    done: set[str] = set()

    async def follow() -> None:
        async for event in queue.events(after="0", block_ms=200):
            if event.event == "completed":
                done.add(event.job_id)
                if wanted <= done:
                    return

    try:
        await asyncio.wait_for(follow(), timeout)
    except TimeoutError:
        raise AssertionError(f"{len(wanted - done)} acknowledged jobs never completed") from None
    return done


async def test_restarting_redis_twice_under_load_loses_nothing(
    own_server: EmbeddedRedis, settings: Settings, queue_name: str
) -> None:
    conn = await conveyor.connect(own_server.url, settings=settings)
    queue = Queue(queue_name, conn)
    runs: Counter[str] = Counter()

    async def job(ctx: conveyor.JobContext, data: Any) -> int:
        runs[ctx.id] += 1
        return int(data["n"])

    unbounded = Retention(count=None, age=None)
    worker = Worker(conn, [queue_name], {"job": job}, concurrency=20, keep_completed=unbounded)
    producer = Producer(queue)
    try:
        async with running(worker):
            producing = asyncio.create_task(producer.run())
            for round_ in range(1, 3):
                await producer.reach(300 * round_)
                before = own_server.pid
                await asyncio.to_thread(own_server.restart, hard=True)  # SIGKILL, then start
                assert own_server.pid != before
            await producer.reach(900)
            producer.stop()
            await producing
            acked = set(producer.acked)
            done = await completed_ids(queue, acked)
        assert acked <= done
        assert all(runs[job_id] >= 1 for job_id in acked)
        for job_id in list(acked)[:: max(1, len(acked) // 50)]:
            job_record = await queue.get_job(job_id)
            assert job_record.state == "completed" and job_record.result == int(job_id[1:])
    finally:
        await conn.close()


async def test_a_producer_gets_a_typed_error_when_redis_stays_down(
    own_server: EmbeddedRedis, settings: Settings, queue_name: str
) -> None:
    conn = await conveyor.connect(own_server.url, settings=settings)
    queue = Queue(queue_name, conn)
    await queue.add("job", 1)
    own_server.kill()
    try:
        with pytest.raises(conveyor.RedisUnavailable, match="CONVEYOR_REDIS_URL"):
            await queue.add("job", 2)
        sync_conn = conveyor.connect_sync(own_server.url, settings=settings)
        with pytest.raises(conveyor.RedisUnavailable):
            conveyor.SyncQueue(queue_name, sync_conn).add("job", 3)
        sync_conn.close()
        own_server.start()  # and the same client carries on once Redis is back
        assert (await queue.add("job", 4)).id
        assert (await queue.counts())["waiting"] == 2  # AOF kept the first; the second never landed
    finally:
        await conn.close()


async def test_an_idle_worker_survives_a_restart_and_takes_the_next_job(
    own_server: EmbeddedRedis, settings: Settings, queue_name: str
) -> None:
    """The wait and the fetch queued behind it: the connection drops mid-wait, and the
    restarted server no longer has the script library (loaded again on first use)."""
    conn = await conveyor.connect(own_server.url, settings=settings)
    queue = Queue(queue_name, conn)
    ran = asyncio.Event()

    async def job(ctx: conveyor.JobContext, data: Any) -> None:
        ran.set()

    worker = Worker(conn, [queue_name], {"job": job}, idle_block=30)
    try:
        async with running(worker):
            await queue.add("job", 1)
            await asyncio.wait_for(ran.wait(), 10)  # the worker works, then waits idle
            ran.clear()
            await asyncio.to_thread(own_server.restart, hard=True)
            await conn.client.function_flush()  # as a server that lost its data would be
            second = await queue.add("job", 2)
            await asyncio.wait_for(ran.wait(), 20)
            done = await queue.get_job(second.id)
            assert done.state in ("active", "completed")
    finally:
        await conn.close()


async def test_a_worker_stops_even_when_redis_is_gone_for_good(
    own_server: EmbeddedRedis, settings: Settings, queue_name: str, caplog: Any
) -> None:
    """Stopping writes (results, releases) but does not wait for a server that never
    returns: the jobs it could not give back come back when their leases expire."""
    conn = await conveyor.connect(own_server.url, settings=settings)
    queue = Queue(queue_name, conn)
    started = asyncio.Event()

    async def endless(ctx: conveyor.JobContext, data: Any) -> None:
        started.set()
        await asyncio.Event().wait()

    worker = Worker(conn, [queue_name], {"endless": endless}, shutdown_grace=0.2)
    task = asyncio.create_task(worker.run())
    try:
        await queue.add("endless")
        await asyncio.wait_for(started.wait(), 10)
        own_server.kill()
        began = asyncio.get_running_loop().time()
        worker.stop()
        await asyncio.wait_for(task, 30)
        assert asyncio.get_running_loop().time() - began < 20
        assert "release not written" in caplog.text
    finally:
        task.cancel()
        await conn.close()
