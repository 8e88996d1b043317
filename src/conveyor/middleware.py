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
        """Wrap one attempt (e.g. a tracing span); return its result.

        Each layer that overrides it costs a coroutine per job: prefer :meth:`job_started`
        and :meth:`job_finished` when nothing needs to run *around* the handler.
        """
        return await call_next()

    def wraps(self, ctx: JobContext) -> bool:
        """Whether :meth:`around_job` wraps this attempt (yes, unless overridden).

        A layer that often has nothing to do around a job (tracing with no SDK configured
        and no incoming trace) answers no and saves the job a coroutine.
        """
        return True

    def job_started(self, ctx: JobContext) -> None:
        """Just before the handler runs, inside every ``around_job`` layer (so within the
        attempt's span when tracing is on)."""

    def job_finished(
        self, ctx: JobContext, outcome: str, duration: float, error: BaseException | None
    ) -> None:
        """After an attempt: outcome is completed, retry, dead or cancelled."""

    def jobs_completed(self, completed: Sequence[tuple[JobContext, float]]) -> None:
        """Attempts that completed, with their durations, once the worker has sent their
        results to Redis and before it reads the reply (one call per acknowledgement batch).

        The default calls :meth:`job_finished` for each; override it to handle a batch at
        once (a log write or a counter update per batch instead of per job).
        """
        for ctx, duration in completed:
            self.job_finished(ctx, "completed", duration, None)

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


def overriding(middleware: Sequence[Middleware], hook: str) -> list[Middleware]:
    """The layers whose class overrides ``hook``: a worker calls only those, per job."""
    default = getattr(Middleware, hook)
    return [layer for layer in middleware if getattr(type(layer), hook) is not default]


def chain(
    middleware: Sequence[Middleware], ctx: JobContext, data: Any, handler: CallNext
) -> CallNext:
    """Compose ``around_job`` hooks, outermost first, around ``handler``.

    Layers that do not override ``around_job`` are left out: each would cost a coroutine
    per job for nothing.
    """
    return wrap(overriding(middleware, "around_job"), ctx, data, handler)


def wrap(layers: Sequence[Middleware], ctx: JobContext, data: Any, handler: CallNext) -> CallNext:
    """:func:`chain` for layers known to override ``around_job`` (a worker's, found once);
    a layer whose :meth:`Middleware.wraps` says no for this job is left out."""
    call = handler
    for layer in reversed(layers):
        if layer.wraps(ctx):
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
