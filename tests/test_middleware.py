"""Middleware hooks: enqueue options, around each job, and outcomes."""

from __future__ import annotations

from typing import Any

import conveyor
from conveyor import CallNext, JobContext, JobOptions, Middleware, Queue
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
