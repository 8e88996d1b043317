"""Worker behaviour against a real Redis: outcomes, retries, timeouts, cancellation."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import conveyor
from conveyor import Backoff, ErrorRule, Handler, JobOptions, Queue, RetryPolicy
from tests.conftest import running, wait_for_state
from tests.isolated_handlers import ignores_everything, sleeps_forever


async def test_completes_job_and_stores_result(queue: Queue, start_worker: Any) -> None:
    async def double(ctx: conveyor.JobContext, data: dict[str, int]) -> int:
        return data["n"] * 2

    job = await queue.add("double", {"n": 21})
    async with start_worker({"double": double}):
        done = await wait_for_state(queue, job.id, "completed")
    assert done.result == 42
    assert done.attempts_made == 0
    assert done.finished_at is not None and done.started_at is not None


async def test_sync_handler_runs_off_the_event_loop(queue: Queue, start_worker: Any) -> None:
    def blocking(ctx: conveyor.JobContext, data: Any) -> str:
        time.sleep(0.2)  # would stall every other job if it ran on the loop
        ctx.progress_sync(50)
        return "ok"

    async def quick(ctx: conveyor.JobContext, data: Any) -> str:
        return "quick"

    slow = await queue.add("blocking")
    fast = await queue.add("quick")
    async with start_worker({"blocking": blocking, "quick": quick}, concurrency=2):
        fast_done = await wait_for_state(queue, fast.id, "completed")
        slow_done = await wait_for_state(queue, slow.id, "completed")
    assert fast_done.finished_at is not None and slow_done.finished_at is not None
    assert fast_done.finished_at <= slow_done.finished_at
    assert slow_done.progress == 50


async def test_retries_with_exponential_backoff_timed_by_redis(
    queue: Queue, start_worker: Any
) -> None:
    async def always_fails(ctx: conveyor.JobContext, data: Any) -> None:
        raise ConnectionError(f"attempt {ctx.attempt}")

    options = JobOptions(attempts=3, backoff=Backoff.exponential(0.2))
    job = await queue.add("flaky", None, options)
    async with start_worker({"flaky": always_fails}):
        dead = await wait_for_state(queue, job.id, "dead")
    assert dead.attempts_made == 3
    assert [a.outcome for a in dead.history] == ["retry", "retry", "dead"]
    assert dead.error is not None and dead.error["type"] == "ConnectionError"
    assert "attempt 3" in dead.error["message"] and "Traceback" in dead.error["traceback"]
    starts = [a.started for a in dead.history]
    ends = [a.finished for a in dead.history]
    assert all(s is not None for s in starts) and all(e is not None for e in ends)
    # The gap before retry n is 0.2 * 2**(n-1): 0.2 s, then 0.4 s (no jitter).
    gap1 = starts[1] - ends[0]  # type: ignore[operator]
    gap2 = starts[2] - ends[1]  # type: ignore[operator]
    assert 0.18 <= gap1 < 1.0
    assert 0.38 <= gap2 < 1.2


async def test_unrecoverable_error_skips_remaining_attempts(
    queue: Queue, start_worker: Any
) -> None:
    async def bad(ctx: conveyor.JobContext, data: Any) -> None:
        raise conveyor.UnrecoverableError("the invoice does not exist")

    job = await queue.add("bad", None, JobOptions(attempts=5))
    async with start_worker({"bad": bad}):
        dead = await wait_for_state(queue, job.id, "dead")
    assert dead.attempts_made == 1
    assert dead.error is not None and dead.error["message"] == "the invoice does not exist"


async def test_per_error_policy(queue: Queue, start_worker: Any) -> None:
    calls: dict[str, int] = {"validation": 0, "network": 0}

    async def validation(ctx: conveyor.JobContext, data: Any) -> None:
        calls["validation"] += 1
        raise ValueError("bad e-mail address")

    async def network(ctx: conveyor.JobContext, data: Any) -> None:
        calls["network"] += 1
        raise TimeoutError("smtp timed out")

    policy = RetryPolicy(
        never=(ValueError,),
        rules={TimeoutError: ErrorRule(backoff=Backoff.fixed(0.01), max_attempts=4)},
    )
    a = await queue.add("validation", None, JobOptions(attempts=10))
    b = await queue.add("network", None, JobOptions(attempts=10))
    async with start_worker({"validation": validation, "network": network}, retry_policy=policy):
        await wait_for_state(queue, a.id, "dead")
        await wait_for_state(queue, b.id, "dead")
    assert calls == {"validation": 1, "network": 4}


async def test_retry_later_does_not_use_an_attempt(queue: Queue, start_worker: Any) -> None:
    calls = 0

    async def limited(ctx: conveyor.JobContext, data: Any) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise conveyor.RetryLater(0.05, "HTTP 429")
        return ctx.attempt

    job = await queue.add("limited", {}, JobOptions(attempts=1))
    async with start_worker({"limited": limited}):
        done = await wait_for_state(queue, job.id, "completed")
    assert done.attempts_made == 0 and done.result == 1
    assert done.history[0].outcome == "retry"


async def test_unknown_job_name_goes_dead_and_worker_keeps_running(
    queue: Queue, start_worker: Any
) -> None:
    async def known(ctx: conveyor.JobContext, data: Any) -> str:
        return "fine"

    unknown = await queue.add("nobody-handles-this")
    async with start_worker({"known": known}):
        dead = await wait_for_state(queue, unknown.id, "dead")
        after = await queue.add("known")
        done = await wait_for_state(queue, after.id, "completed")
    assert dead.error is not None and "no handler registered" in dead.error["message"]
    assert done.result == "fine"


async def test_non_json_result_is_a_clear_failure(queue: Queue, start_worker: Any) -> None:
    async def returns_object(ctx: conveyor.JobContext, data: Any) -> object:
        return object()

    job = await queue.add("obj")
    async with start_worker({"obj": returns_object}):
        dead = await wait_for_state(queue, job.id, "dead")
    assert dead.error is not None and "not JSON" in dead.error["message"]


async def test_async_timeout_cancels_the_handler(queue: Queue, start_worker: Any) -> None:
    cancelled = asyncio.Event()

    async def slow(ctx: conveyor.JobContext, data: Any) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    job = await queue.add("slow", None, JobOptions(timeout=0.2, attempts=1))
    async with start_worker({"slow": slow}):
        dead = await wait_for_state(queue, job.id, "dead")
    assert cancelled.is_set()
    assert dead.error is not None and dead.error["type"] == "JobTimeout"


async def test_handler_ignoring_cancellation_is_abandoned_after_grace(
    queue: Queue, start_worker: Any
) -> None:
    async def stubborn(ctx: conveyor.JobContext, data: Any) -> None:
        for _ in range(100):
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                continue

    job = await queue.add("stubborn", None, JobOptions(timeout=0.1, attempts=1))
    async with start_worker({"stubborn": stubborn}, timeout_grace=0.1):
        dead = await wait_for_state(queue, job.id, "dead", timeout=5)
    assert dead.error is not None and dead.error["type"] == "JobTimeout"


async def test_process_isolation_kills_a_blocking_handler(queue: Queue, start_worker: Any) -> None:
    handler = Handler(sleeps_forever, isolation="process")
    job = await queue.add(
        "block", None, JobOptions(timeout=0.5, attempts=2, backoff=Backoff.fixed(0))
    )
    started = time.monotonic()
    async with start_worker({"block": handler}, timeout_grace=0.2):
        dead = await wait_for_state(queue, job.id, "dead", timeout=30)
    assert time.monotonic() - started < 25
    assert dead.attempts_made == 2
    assert dead.error is not None and dead.error["type"] == "JobTimeout"
    assert "killed" in dead.error["message"]


async def test_process_isolation_kills_a_handler_ignoring_sigterm(
    queue: Queue, start_worker: Any
) -> None:
    handler = Handler(ignores_everything, isolation="process")
    job = await queue.add("stubborn", None, JobOptions(timeout=0.5, attempts=1))
    async with start_worker({"stubborn": handler}, timeout_grace=0.2):
        dead = await wait_for_state(queue, job.id, "dead", timeout=30)
    assert dead.error is not None and dead.error["type"] == "JobTimeout"


async def test_cancel_running_job(queue: Queue, start_worker: Any) -> None:
    started = asyncio.Event()

    async def long(ctx: conveyor.JobContext, data: Any) -> None:
        started.set()
        await asyncio.sleep(30)

    job = await queue.add("long", None, JobOptions(attempts=3))
    async with start_worker({"long": long}, lease=0.6):
        await asyncio.wait_for(started.wait(), 5)
        assert await queue.cancel(job.id) == "requested"
        cancelled = await wait_for_state(queue, job.id, "cancelled", timeout=5)
    assert cancelled.attempts_made == 0
    assert (await queue.counts())["cancelled"] == 1


async def test_progress_and_logs(queue: Queue, start_worker: Any) -> None:
    async def reporting(ctx: conveyor.JobContext, data: Any) -> None:
        for step in range(3):
            await ctx.progress({"done": step + 1, "total": 3})
            await ctx.log(f"step {step + 1}")

    job = await queue.add("report")
    async with start_worker({"report": reporting}):
        done = await wait_for_state(queue, job.id, "completed")
    assert done.progress == {"done": 3, "total": 3}
    assert done.logs == ["step 1", "step 2", "step 3"]


async def test_priorities_run_higher_first(queue: Queue, start_worker: Any) -> None:
    order: list[int] = []

    async def record(ctx: conveyor.JobContext, data: dict[str, int]) -> None:
        order.append(data["p"])

    await queue.add_bulk([("rec", {"p": p}, JobOptions(priority=p)) for p in (0, 5, -3, 10, 5, 0)])
    last = await queue.add("rec", {"p": -1000}, JobOptions(priority=-1000))
    async with start_worker({"rec": record}, concurrency=1):
        await wait_for_state(queue, last.id, "completed")
    assert order == [10, 5, 5, 0, 0, -3, -1000]


async def test_delayed_job_fires_on_time(queue: Queue, start_worker: Any) -> None:
    async def stamp(ctx: conveyor.JobContext, data: Any) -> None:
        return None

    async with start_worker({"stamp": stamp}):
        job = await queue.add("stamp", None, JobOptions(delay=0.5))
        pending = await queue.get_job(job.id)
        assert pending.state == "delayed" and pending.ready_at is not None
        done = await wait_for_state(queue, job.id, "completed")
    assert done.started_at is not None
    lateness = done.started_at - pending.ready_at
    assert 0 <= lateness < 0.25, lateness  # a poller would be late by its interval


async def test_pause_and_resume(queue: Queue, start_worker: Any) -> None:
    async def ok(ctx: conveyor.JobContext, data: Any) -> str:
        return "ok"

    await queue.pause()
    assert await queue.is_paused()
    async with start_worker({"ok": ok}):
        job = await queue.add("ok")
        await asyncio.sleep(0.3)  # a paused queue must not be served: nothing to await
        assert (await queue.get_job(job.id)).state == "waiting"
        await queue.resume()
        await wait_for_state(queue, job.id, "completed")


async def test_graceful_shutdown_releases_unfinished_jobs_at_once(
    conn: conveyor.Connection, queue: Queue
) -> None:
    started = asyncio.Event()

    async def long(ctx: conveyor.JobContext, data: Any) -> None:
        started.set()
        await asyncio.sleep(60)

    job = await queue.add("long")
    worker = conveyor.Worker(conn, [queue.name], {"long": long}, lease=30, shutdown_grace=0.2)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(started.wait(), 5)
    worker.stop()
    await asyncio.wait_for(task, 5)
    released = await queue.get_job(job.id)
    assert released.state == "waiting"
    assert released.attempts_made == 0 and released.stalls == 0


@pytest.mark.parametrize("concurrency", [1, 7])
async def test_concurrency_limit_is_respected(
    queue: Queue, start_worker: Any, concurrency: int
) -> None:
    running = 0
    peak = 0

    async def track(ctx: conveyor.JobContext, data: Any) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1

    jobs = await queue.add_bulk([("track", i) for i in range(40)])
    async with start_worker({"track": track}, concurrency=concurrency):
        for job in jobs:
            await wait_for_state(queue, job.id, "completed")
    assert peak == concurrency


class Idles(conveyor.Worker):
    """Tells when it waits on an empty queue; ``stop_on_wake`` stops it as that wait's
    reply is read, when the fetch queued behind the wait has leased what there was."""

    stop_on_wake = False

    def __init__(self, *args: Any, **options: Any) -> None:
        super().__init__(*args, **options)
        self.waiting = asyncio.Event()
        self.waits: list[int | None] = []  # jobs each wait's reply started as it was read

    async def _wait_then_fetch(
        self, q: Any, args: list[Any], reserved: int
    ) -> tuple[list[Any], int | None]:
        self.waiting.set()
        scripts = self.connection.scripts
        if not self.stop_on_wake:
            outcome = await super()._wait_then_fetch(q, args, reserved)
            self.waits.append(outcome[1])
            return outcome
        after = scripts.after

        async def stopping_first(*call: Any, then: Any = None, **options: Any) -> Any:
            def stop_then(reply: list[Any]) -> None:
                self.stop()
                if then is not None:
                    then(reply)

            return await after(*call, then=stop_then, **options)

        scripts.after = stopping_first  # type: ignore[method-assign]
        try:
            return await super()._wait_then_fetch(q, args, reserved)
        finally:
            del scripts.after


async def test_an_idle_worker_stops_at_once_and_leaves_no_wake_key(
    conn: conveyor.Connection, queue: Queue
) -> None:
    worker = Idles(conn, [queue.name], {}, idle_block=30)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.waiting.wait(), 5)
    began = time.monotonic()
    worker.stop()
    await asyncio.wait_for(task, 5)
    assert time.monotonic() - began < 2  # woken, not timed out after 30 s
    assert await conn.client.exists(worker._queues[0].wake) == 0


async def test_a_waiting_worker_starts_the_jobs_as_the_reply_is_read(
    conn: conveyor.Connection, queue: Queue
) -> None:
    ran = asyncio.Event()
    worker = Idles(conn, [queue.name], {"x": lambda ctx, data: ran.set()})
    async with running(worker):
        await asyncio.wait_for(worker.waiting.wait(), 5)
        await queue.add("x")
        await asyncio.wait_for(ran.wait(), 5)
    assert 1 in worker.waits  # started from the reply, before the fetch loop resumed


async def test_jobs_fetched_as_the_worker_stops_are_given_back(
    conn: conveyor.Connection, queue: Queue
) -> None:
    ran: list[str] = []
    worker = Idles(conn, [queue.name], {"x": lambda ctx, data: ran.append(ctx.id)})
    worker.stop_on_wake = True
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.waiting.wait(), 5)
    job = await queue.add("x")  # wakes the worker, whose queued fetch leases it at once
    await asyncio.wait_for(task, 5)
    back = await queue.get_job(job.id)
    assert ran == [] and back.state == "waiting"
    assert back.attempts_made == 0 and back.stalls == 0
    entries = await conn.client.xrange(queue.keys.events)
    assert [f["event"] for _, f in entries if f.get("job") == job.id][-2:] == [
        "active",
        "released",
    ]  # leased by the fetch, then given back
