"""Seams for observability and policy: hooks around enqueue and around each job.

Subclass :class:`Middleware` and override what you need; every hook has a no-op default.
Metrics, structured logs and tracing plug in here without the engine knowing them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from conveyor.context import JobContext
from conveyor.job import JobOptions

#: Runs the rest of the chain (the next middleware, finally the handler).
CallNext = Callable[[], Awaitable[Any]]


class Middleware:
    """Hooks a worker and a queue call. Worker hooks must be cheap: they run per job."""

    def before_enqueue(self, queue: str, name: str, options: JobOptions) -> JobOptions:
        """Producer side: return the options to enqueue with (e.g. add a correlation id)."""
        return options

    async def around_job(self, ctx: JobContext, data: Any, call_next: CallNext) -> Any:
        """Wrap one attempt (e.g. a tracing span or a logging context); return its result."""
        return await call_next()

    def job_finished(
        self, ctx: JobContext, outcome: str, duration: float, error: BaseException | None
    ) -> None:
        """After an attempt: outcome is completed, retry, dead or cancelled."""

    def jobs_fetched(self, queue: str, count: int) -> None:
        """After a fetch that leased ``count`` jobs (0 when the queue was empty)."""

    def lease_lost(self, queue: str, job_id: str) -> None:
        """A result or failure was rejected because another attempt owns the job."""

    def stalled(self, queue: str, requeued: int, dead: int) -> None:
        """The stall check moved jobs whose lease expired."""

    async def worker_started(self, worker_id: str, queues: Sequence[str]) -> None:
        """The worker is about to fetch (e.g. start a background flush task)."""

    async def worker_stopped(self, worker_id: str, queues: Sequence[str]) -> None:
        """The worker finished its last job and is about to unregister (e.g. flush)."""


def chain(
    middleware: Sequence[Middleware], ctx: JobContext, data: Any, handler: CallNext
) -> CallNext:
    """Compose ``around_job`` hooks, outermost first, around ``handler``.

    Layers that do not override ``around_job`` are left out: each would cost a coroutine
    per job for nothing.
    """
    call = handler
    for layer in reversed(middleware):
        if type(layer).around_job is not Middleware.around_job:
            call = _bind(layer, ctx, data, call)
    return call


def _bind(layer: Middleware, ctx: JobContext, data: Any, inner: CallNext) -> CallNext:
    async def call() -> Any:
        return await layer.around_job(ctx, data, inner)

    return call


def before_enqueue(
    middleware: Sequence[Middleware], queue: str, name: str, options: JobOptions
) -> JobOptions:
    for layer in middleware:
        options = layer.before_enqueue(queue, name, options)
    return options
