"""Worker processes killed, paused, terminated: no job is lost, no stale write lands."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import conveyor
from conveyor import JobOptions, Queue
from tests.conftest import wait_for_state
from tests.faults.conftest import runs, wait_for_events
from tests.faults.handlers import GO

LEASE = 1.0
CHECK = 0.2


async def quick(ctx: conveyor.JobContext, data: Any) -> str:
    return "in-process"


async def test_sigkill_with_50_active_jobs_redelivers_all_of_them(
    queue: Queue, spawn: Any, start_worker: Any
) -> None:
    added = await queue.add_bulk([("hold", {"seconds": 3600}) for _ in range(50)])
    victim = await spawn(concurrency=50, lease=LEASE)
    await wait_for_events(queue, "progress", 50)
    async with start_worker({"hold": quick}, stall_check_interval=CHECK):
        victim.signal(signal.SIGKILL)
        killed = time.monotonic()
        assert await victim.wait(10) == -signal.SIGKILL
        completed = await wait_for_events(queue, "completed", 50)
        took = time.monotonic() - killed
    assert sorted(completed) == sorted(job.id for job in added)
    counts = await queue.counts()
    assert counts["completed"] == 50 and counts["active"] == counts["waiting"] == 0
    # Redelivered within lease + check interval (plus the fetch, and slack for a busy CI box).
    assert took < LEASE + CHECK + 1.5, f"took {took:.2f}s"
    job = await queue.get_job(added[0].id)
    assert job.stalls == 1 and job.result == "in-process"
    assert job.history[0].outcome == "stalled"


async def test_a_worker_paused_past_its_lease_cannot_complete_the_job(
    queue: Queue, spawn: Any, start_worker: Any
) -> None:
    job = await queue.add("late", None, JobOptions(attempts=3))
    paused = await spawn(concurrency=1, lease=0.6)
    await wait_for_events(queue, "progress", 1)
    paused.signal(signal.SIGSTOP)
    async with start_worker({"late": quick}, stall_check_interval=CHECK):
        done = await wait_for_state(queue, job.id, "completed")
    assert done.result == "in-process"

    await queue.connection.client.rpush(GO, "go")  # the paused handler returns as it wakes
    paused.signal(signal.SIGCONT)
    await _until_logged(paused, "lease lost")
    paused.signal(signal.SIGTERM)
    assert await paused.wait(15) == 0

    after = await queue.get_job(job.id)
    assert after.state == "completed" and after.result == "in-process"
    assert (await runs(queue))[job.id] == 1  # counted by the paused worker's handler only
    assert await queue.connection.client.llen(GO) == 0  # which woke up and returned
    # Either the late completion reached Redis and was refused by its stale fencing token, or
    # the lease renewal noticed the loss first and dropped the result: both logged.
    output = paused.output()
    assert "its result was not written" in output or "abandoning it" in output
    completions = [e for e in await _events(queue) if e.job_id == job.id and e.event == "completed"]
    assert len(completions) == 1


async def test_a_handler_that_kills_its_process_ends_dead_and_others_flow(
    queue: Queue, spawn: Any
) -> None:
    max_stalls = 2
    bomb = await queue.add("suicide", None)
    others = await queue.add_bulk([("count", {}) for _ in range(20)])
    # One job at a time, so the crashes take no other job down with the bomb (those would be
    # redelivered too, but could stall out beside it).
    options = {"concurrency": 1, "lease": 0.5, "stall_check_interval": 0.1,
               "max_stalls": max_stalls}  # fmt: skip
    dead = asyncio.create_task(wait_for_state(queue, bomb.id, "dead", timeout=60))
    crashes = 0
    while not dead.done():  # a supervisor (systemd, Kubernetes) restarting the worker
        worker = await spawn(**options)
        exited = asyncio.create_task(worker.wait(60))
        await asyncio.wait({dead, exited}, return_when=asyncio.FIRST_COMPLETED)
        if exited.done():
            assert exited.result() == -signal.SIGKILL
            crashes += 1
        else:
            exited.cancel()
        assert crashes <= max_stalls + 1
    job = dead.result()
    assert crashes == max_stalls + 1
    assert (await runs(queue))[bomb.id] == max_stalls + 1
    assert job.error is not None and job.error["type"] == "Stalled"
    for other in others:
        await wait_for_state(queue, other.id, "completed", timeout=30)


async def test_sigterm_stops_fetching_and_releases_unfinished_jobs_at_once(
    queue: Queue, spawn: Any
) -> None:
    grace = 1.0
    long_jobs = await queue.add_bulk([("hold", {"seconds": 3600}) for _ in range(5)])
    worker = await spawn(concurrency=8, lease=30, shutdown_grace=grace)
    await wait_for_events(queue, "progress", 5)
    worker.signal(signal.SIGTERM)
    signalled = time.monotonic()
    await _until_logged(worker, "stopping")
    latecomers = await queue.add_bulk([("count", {}) for _ in range(10)])  # free slots: 3
    assert await worker.wait(grace + 10) == 0
    took = time.monotonic() - signalled
    assert took < grace + 2.5, f"exit took {took:.2f}s"

    counts = await queue.counts()
    assert (
        counts["active"] == 0 and counts["waiting"] == 15
    )  # released at once, not at lease expiry
    for job in long_jobs:
        assert (await queue.get_job(job.id)).state == "waiting"
    for job in latecomers:
        assert (await queue.get_job(job.id)).state == "waiting"
    events = await _events(queue)
    assert sum(e.event == "active" for e in events) == 5
    assert sum(e.event == "released" for e in events) == 5
    assert (await runs(queue)).keys() == {job.id for job in long_jobs}


async def _events(queue: Queue) -> list[conveyor.Event]:
    out = []
    async for event in queue.events(after="0", block_ms=0):
        out.append(event)
        if len(out) >= await queue.connection.client.xlen(queue.keys.events):
            break
    return out


async def _until_logged(worker: Any, text: str, timeout: float = 15) -> None:
    """A worker's log line has no event to await: poll its log file, briefly."""
    deadline = time.monotonic() + timeout
    while text not in worker.output():
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{worker.output()}"
        await asyncio.sleep(0.02)
