"""High availability: several scheduler processes, one killed, one job per fire time."""

from __future__ import annotations

import asyncio
import sys

import conveyor
from conveyor import Queue
from conveyor.scheduler import Schedule, Schedules

INSTANCE = """
import asyncio, sys
import conveyor
from conveyor.scheduler import Scheduler

async def main() -> None:
    conn = await conveyor.connect(sys.argv[1])
    await Scheduler(conn, [sys.argv[2]], poll=0.05).run()

asyncio.run(main())
"""
STEP_MS = 100


async def wait_for_jobs(queue: Queue, count: int, timeout: float = 30) -> None:
    """Follow the event stream until ``count`` jobs have been enqueued."""

    async def follow() -> None:
        async for _ in queue.events(after="0", block_ms=200):
            if (await queue.counts())["waiting"] >= count:
                return

    await asyncio.wait_for(follow(), timeout)


async def test_three_instances_and_a_killed_one_give_exactly_one_job_per_fire_time(
    redis_server: conveyor.EmbeddedRedis, conn: conveyor.Connection, queue_name: str
) -> None:
    schedules = Schedules(conn, queue_name)
    # A tick delayed on a busy machine must still enqueue every fire time it is late for.
    await schedules.upsert(Schedule("tick", "tick", every=STEP_MS / 1000, catch_up_limit=1000))
    queue = Queue(queue_name, conn)
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", INSTANCE, redis_server.url, queue_name
        )
        for _ in range(3)
    ]
    try:
        await wait_for_jobs(queue, 5)
        procs[0].kill()  # mid-flight, maybe between reading and claiming a fire time
        await asyncio.wait_for(procs[0].wait(), 10)
        seen = (await queue.counts())["waiting"]
        await wait_for_jobs(queue, seen + 10)
        await schedules.pause("tick")
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
        for proc in procs:
            await asyncio.wait_for(proc.wait(), 10)
    ids = await queue.list_ids("waiting", limit=1000)
    fires = sorted(int(i.rsplit("-", 1)[1]) for i in ids)
    assert len(fires) == len(set(fires)) >= 15
    # Every fire time between the first and the last became a job: none lost, none doubled.
    assert fires == list(range(fires[0], fires[-1] + STEP_MS, STEP_MS))
    assert (await schedules.get("tick")).runs == len(fires)
