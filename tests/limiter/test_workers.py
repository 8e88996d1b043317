"""Limits, fairness and deadlines with real workers (and real worker processes)."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import conveyor
from conveyor import (
    EmbeddedRedis,
    GroupLimits,
    JobOptions,
    Limiter,
    Limits,
    Queue,
    Rate,
    RateLimited,
    Retention,
    Worker,
)
from conveyor.keys import GLOBAL_WORKERS
from tests.conftest import running, wait_for_state

ROOT = Path(__file__).resolve().parents[2]
KEEP_ALL = Retention(None, None)


async def noop(ctx: conveyor.JobContext, data: Any) -> None:
    return None


async def until_completed(queue: Queue, total: int, timeout: float = 60) -> None:
    """Follow the event stream until ``total`` jobs completed."""

    async def follow() -> None:
        done = 0
        async for event in queue.events(after="0", block_ms=200):
            done += event.event == "completed"
            if done >= total:
                return

    await asyncio.wait_for(follow(), timeout)


async def starts(queue: Queue, ids: list[str]) -> list[float]:
    """Start times (Redis clock, seconds) of ``ids``, in order."""
    jobs = await queue.get_jobs(ids)
    return sorted(job.started_at for job in jobs if job and job.started_at is not None)


def assert_sliding_window(times: list[float], limit: int, period: float) -> None:
    """No window of ``period`` seconds holds more than ``limit`` starts (ms resolution)."""
    for i in range(len(times) - limit):
        assert times[i + limit] - times[i] >= period - 0.0005, (i, times[i : i + limit + 1])


async def until_registered(queue: Queue, pids: list[int], timeout: float = 60) -> None:
    """Wait for worker processes to announce themselves (ids are host-pid-suffix)."""
    prefixes = [f"{socket.gethostname()}-{pid}-" for pid in pids]

    async def poll() -> None:
        while True:
            ids = await queue.connection.client.zrange(GLOBAL_WORKERS, 0, -1)
            if all(any(i.startswith(p) for i in ids) for p in prefixes):
                return
            await asyncio.sleep(0.05)  # another process: nothing to await but its heartbeat

    await asyncio.wait_for(poll(), timeout)


async def start_process(url: str, queue: str, log: Path) -> asyncio.subprocess.Process:
    # Two jobs per fetch: a window's five jobs need fetches by both processes (with whole
    # windows per fetch, the process Redis wakes first on ties could take every window).
    args = ["-m", "conveyor", "worker", "--app", "tests.limiter.handlers:HANDLERS",
            "-q", queue, "--url", url, "-c", "4"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, *args, cwd=ROOT, env=env, stdout=out, stderr=out
        )


async def test_a_queue_rate_limit_holds_across_two_worker_processes(
    redis_server: EmbeddedRedis, queue: Queue, tmp_path: Path
) -> None:
    limit, period, total = 5, 0.5, 30
    await Limiter(queue).set(Limits(rate=Rate(limit, period)))
    processes = [
        await start_process(redis_server.url, queue.name, tmp_path / f"w{n}.log") for n in (1, 2)
    ]
    try:
        await until_registered(queue, [p.pid for p in processes])
        added = await queue.add_bulk([("noop", i) for i in range(total)])
        await until_completed(queue, total)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            await asyncio.wait_for(process.wait(), 30)
    jobs = [job for job in await queue.get_jobs([e.id for e in added]) if job]
    assert len({job.worker for job in jobs}) == 2, "both processes ran jobs"
    times = await starts(queue, [e.id for e in added])
    assert len(times) == total
    assert_sliding_window(times, limit, period)
    # and the limit is the only brake: the whole run takes about total / rate
    assert times[-1] - times[0] < (total / limit - 1) * period + 1.5


async def test_a_group_limit_holds_while_other_groups_run_at_full_speed(
    queue: Queue, start_worker: Any
) -> None:
    limiter = Limiter(queue)
    await limiter.set_group("slow", GroupLimits(rate=Rate(2, 0.5)))
    slow = await queue.add_bulk([("noop", i, JobOptions(group="slow")) for i in range(8)])
    fast_jobs = [("noop", i, JobOptions(group=f"fast{i % 10}")) for i in range(200)]
    fast = await queue.add_bulk(fast_jobs)  # type: ignore[arg-type]
    async with start_worker({"noop": noop}, concurrency=20, keep_completed=KEEP_ALL):
        await until_completed(queue, 208)
    slow_times = await starts(queue, [e.id for e in slow])
    fast_times = await starts(queue, [e.id for e in fast])
    assert_sliding_window(slow_times, 2, 0.5)
    assert slow_times[-1] - slow_times[0] >= 1.5
    # every fast job started before the slow group's first window even reopened
    assert fast_times[-1] < slow_times[2], (fast_times[-1] - fast_times[0], slow_times)


async def test_a_small_tenant_is_served_while_a_large_backlog_drains(
    queue: Queue, start_worker: Any
) -> None:
    big = await queue.add_bulk([("noop", i, JobOptions(group="tenant:big")) for i in range(3000)])
    small = await queue.add_bulk([("noop", i, JobOptions(group="tenant:small")) for i in range(10)])
    async with start_worker({"noop": noop}, concurrency=10, keep_completed=KEEP_ALL):
        for job in small:
            await wait_for_state(queue, job.id, "completed", timeout=30)
        last_small = max(await starts(queue, [e.id for e in small]))
        counts = await queue.counts()
    big_before = [t for t in await starts(queue, [e.id for e in big]) if t <= last_small]
    # round-robin: the ten small jobs alternated with about ten big ones
    assert len(big_before) <= 40, len(big_before)
    assert counts["waiting"] > 2000, counts


async def test_concurrency_limits_hold_across_two_workers(
    conn: conveyor.Connection, queue: Queue
) -> None:
    await Limiter(queue).set(Limits(concurrency=4, group_concurrency=2))
    running_now: collections.Counter[str] = collections.Counter()
    peak: collections.Counter[str] = collections.Counter()

    async def hold(ctx: conveyor.JobContext, data: Any) -> None:
        group = data["group"]
        running_now[group] += 1
        running_now["*"] += 1
        peak[group] = max(peak[group], running_now[group])
        peak["*"] = max(peak["*"], running_now["*"])
        await asyncio.sleep(0.02)  # the work itself
        running_now[group] -= 1
        running_now["*"] -= 1

    groups = ["a", "b", "c"]
    await queue.add_bulk(
        [("hold", {"group": g}, JobOptions(group=g)) for g in groups for _ in range(10)]
    )
    # each worker could run 3: reaching 4 at once takes both, and the queue limit binds
    workers = [Worker(conn, [queue.name], {"hold": hold}, concurrency=3) for _ in range(2)]
    async with running(workers[0]), running(workers[1]):
        await until_completed(queue, 30)
    assert peak["*"] == 4
    assert max(peak[g] for g in groups) == 2
    assert sum(w.stats.completed for w in workers) == 30
    assert all(w.stats.completed > 0 for w in workers)
    assert (await Limiter(queue).status()).inflight == {}


async def test_rate_limited_throttles_the_group_without_using_an_attempt(
    queue: Queue, start_worker: Any
) -> None:
    await Limiter(queue).set(Limits(group_concurrency=1))
    refused: set[str] = set()

    async def call_api(ctx: conveyor.JobContext, data: Any) -> str:
        if ctx.id not in refused and data == "first":
            refused.add(ctx.id)
            raise RateLimited(0.4)
        return "ok"

    first = await queue.add("call", "first", JobOptions(group="api", attempts=1))
    second = await queue.add("call", "second", JobOptions(group="api"))
    other = await queue.add("call", "other", JobOptions(group="elsewhere"))
    async with start_worker({"call": call_api}):
        done = await wait_for_state(queue, first.id, "completed")
        later = await wait_for_state(queue, second.id, "completed")
        elsewhere = await wait_for_state(queue, other.id, "completed")
    assert done.attempts_made == 0 and done.history[0].outcome == "retry"
    refused_at = done.history[0].finished
    assert refused_at is not None and later.started_at is not None
    assert later.started_at >= refused_at + 0.4 - 0.01  # the whole group waited
    assert elsewhere.started_at is not None and elsewhere.started_at < refused_at + 0.4


async def test_a_job_not_started_by_its_deadline_goes_to_dead(
    queue: Queue, start_worker: Any
) -> None:
    await queue.pause()
    late = await queue.add("noop", None, JobOptions(deadline=0.2))
    async with start_worker({"noop": noop}):
        job = await wait_for_state(queue, late.id, "dead")
    assert job.started_at is None
    assert job.error is not None and job.error["type"] == "Expired"


async def test_grouped_waiting_jobs_are_counted_and_listed(
    redis_server: EmbeddedRedis, queue: Queue
) -> None:
    plain = await queue.add_bulk([("noop", i) for i in range(3)])
    grouped = await queue.add_bulk([("noop", i, JobOptions(group=f"g{i}")) for i in range(3)])
    assert (await queue.counts())["waiting"] == 6
    listed = await queue.list_ids("waiting", limit=10)
    assert listed == [e.id for e in plain] + [e.id for e in grouped]
    assert await queue.list_ids("waiting", offset=2, limit=2) == [plain[2].id, grouped[0].id]
    assert await queue.list_ids("waiting", offset=4, limit=5) == [e.id for e in grouped[1:]]
    sync = conveyor.SyncQueue(queue.name, url=redis_server.url)
    try:
        assert sync.counts()["waiting"] == 6
    finally:
        sync.close()
