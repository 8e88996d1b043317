"""``conveyor scheduler``: a process that fires schedules and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys

import conveyor
from conveyor import Queue, Schedule, Schedules
from tests.conftest import wait_for_state


async def test_the_scheduler_command_fires_and_stops_on_sigterm(
    redis_server: conveyor.EmbeddedRedis, conn: conveyor.Connection, queue_name: str
) -> None:
    await Schedules(conn, queue_name).upsert(Schedule("s", "tick", every=0.1))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "conveyor", "scheduler", "-q", queue_name,
        "--url", redis_server.url, "--poll", "0.05",
    )  # fmt: skip
    queue = Queue(queue_name, conn)
    try:

        async def first_job() -> str:
            async for event in queue.events(after="0", block_ms=200):
                if event.event == "waiting":
                    return event.job_id
            raise AssertionError("unreachable")

        job_id = await asyncio.wait_for(first_job(), 30)
        job = await wait_for_state(queue, job_id, "waiting")
        assert job.meta["schedule"] == "s"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
