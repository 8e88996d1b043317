"""Middleware hooks: enqueue options, around each job, and outcomes."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import conveyor
from conveyor import CallNext, JobContext, JobOptions, Middleware, Queue
from conveyor.middleware import chain
from tests.conftest import running, wait_for_state


class Recorder(Middleware):
    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def before_enqueue(self, queue: str, name: str, options: JobOptions) -> JobOptions:
        return JobOptions(meta={"correlation_id": f"corr-{name}"}).merged(options)

    async def around_job(self, ctx: JobContext, data: Any, call_next: CallNext) -> Any:
        self.calls.append(("before", ctx.name, ctx.correlation_id or ""))
        result = await call_next()
        self.calls.append(("after", ctx.name))
        return result

    def job_finished(
        self, ctx: JobContext, outcome: str, duration: float, error: BaseException | None
    ) -> None:
        self.calls.append(("finished", ctx.name, outcome, type(error).__name__))


async def test_hooks_see_enqueue_job_and_outcome(
    conn: conveyor.Connection, queue_name: str
) -> None:
    recorder = Recorder()
    queue = Queue(queue_name, conn, middleware=[recorder])

    async def ok(ctx: JobContext, data: Any) -> str:
        return "ok"

    async def bad(ctx: JobContext, data: Any) -> None:
        raise conveyor.UnrecoverableError("no")

    good = await queue.add("ok")
    failing = (await queue.add_bulk([("bad", None)]))[0]
    worker = conveyor.Worker(conn, [queue_name], {"ok": ok, "bad": bad}, middleware=[recorder])
    async with running(worker):
        await wait_for_state(queue, good.id, "completed")
        await wait_for_state(queue, failing.id, "dead")
    assert ("before", "ok", "corr-ok") in recorder.calls
    assert ("after", "ok") in recorder.calls
    assert ("finished", "ok", "completed", "NoneType") in recorder.calls
    assert ("finished", "bad", "dead", "UnrecoverableError") in recorder.calls
    assert ("after", "bad") not in recorder.calls


class Lifecycle(Middleware):
    def __init__(self) -> None:
        self.events: list[tuple[str, str, tuple[str, ...]]] = []
        self.ready: list[float | None] = []

    async def worker_started(self, worker_id: str, queues: Sequence[str]) -> None:
        self.events.append(("started", worker_id, tuple(queues)))

    async def worker_stopped(self, worker_id: str, queues: Sequence[str]) -> None:
        self.events.append(("stopped", worker_id, tuple(queues)))

    async def around_job(self, ctx: JobContext, data: Any, call_next: CallNext) -> Any:
        self.ready.append(ctx.ready_at)
        return await call_next()


async def test_lifecycle_hooks_and_ready_time(conn: conveyor.Connection, queue_name: str) -> None:
    hooks = Lifecycle()
    queue = Queue(queue_name, conn)
    before = time.time()
    job = await queue.add("ok", None, JobOptions(delay=0.2))
    worker = conveyor.Worker(
        conn, [queue_name], {"ok": lambda ctx, data: None}, middleware=[hooks], worker_id="w-1"
    )
    async with running(worker):
        assert hooks.events == [("started", "w-1", (queue_name,))]
        await wait_for_state(queue, job.id, "completed")
    assert hooks.events[-1] == ("stopped", "w-1", (queue_name,))
    (ready,) = hooks.ready
    assert ready is not None and before + 0.199 <= ready <= time.time()  # ms resolution


def test_layers_without_around_job_are_left_out_of_the_chain() -> None:
    async def handler() -> str:
        return "done"

    ctx: Any = None
    assert chain([Middleware(), Middleware()], ctx, None, handler) is handler
    assert chain([Recorder()], ctx, None, handler) is not handler


class Completions(Middleware):
    def __init__(self) -> None:
        self.told = 0

    def jobs_completed(self, completed: Sequence[tuple[JobContext, float]]) -> None:
        self.told += len(completed)


async def test_a_reader_on_the_loop_never_sees_a_completion_the_middleware_was_not_told(
    conn: conveyor.Connection, queue_name: str
) -> None:
    # The batch hook runs once the acks are written, overlapping Redis: still before
    # any reply that could show them completed is read.
    hooks = Completions()
    queue = Queue(queue_name, conn)
    await queue.add_bulk([("ok", None)] * 600)
    worker = conveyor.Worker(
        conn, [queue_name], {"ok": lambda ctx, data: None}, middleware=[hooks], concurrency=20
    )
    reads = 0
    async with running(worker):
        while (completed := (await queue.counts())["completed"]) < 600:
            assert completed <= hooks.told
            reads += 1
    assert hooks.told == 600
    assert reads > 5  # the reads interleaved with the batches
