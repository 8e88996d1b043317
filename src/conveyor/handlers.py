"""Handlers: the functions workers run, and how each one is invoked."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Literal

from conveyor.context import JobContext
from conveyor.errors import ConfigError, JobTimeout
from conveyor.isolation import IsolatedContext, import_path, run_isolated
from conveyor.retry import RetryPolicy

Isolation = Literal["none", "process"]


@dataclass(frozen=True, slots=True)
class Handler:
    """A handler function with how to run it.

    ``isolation="process"`` runs each job in a child process that is killed when the job
    times out: the escalation for handlers that block or ignore cancellation.
    ``timeout`` applies to jobs that set none; ``retry`` overrides the worker's policy.
    """

    function: Callable[..., Any]
    isolation: Isolation = "none"
    timeout: float | None = None
    retry: RetryPolicy | None = None
    #: Whether ``function`` is a coroutine function (looked up once: a worker asks per job).
    is_async: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        if not callable(self.function):
            raise ConfigError("handler", f"{self.function!r} is not callable")
        if self.isolation not in ("none", "process"):
            raise ConfigError("handler.isolation", "must be 'none' or 'process'")
        if self.isolation == "process":
            import_path(self.function)  # fails now, not at the first job
        object.__setattr__(self, "is_async", inspect.iscoroutinefunction(self.function))


def as_handlers(raw: Mapping[str, Callable[..., Any] | Handler]) -> dict[str, Handler]:
    handlers = {}
    for name, value in raw.items():
        handlers[name] = value if isinstance(value, Handler) else Handler(value)
    return handlers


async def _bounded(future: asyncio.Future[Any], timeout: float | None, grace: float) -> Any:
    """Await ``future`` for ``timeout`` s; then cancel it and give it ``grace`` s to stop.

    A handler that ignores the cancellation is abandoned (its result is never written).
    """
    if timeout is None:
        return await future
    done, _ = await asyncio.wait({future}, timeout=timeout)
    if done:
        return future.result()
    future.cancel()
    await asyncio.wait({future}, timeout=grace)
    raise JobTimeout(f"handler ran longer than its timeout of {timeout}s")


async def invoke(
    handler: Handler,
    ctx: JobContext,
    data: Any,
    *,
    timeout: float | None,
    grace: float,
    executor: Executor | None,
) -> Any:
    """Run one attempt of ``handler`` and return its result."""
    if handler.isolation == "process":
        context = IsolatedContext(ctx.id, ctx.name, ctx.queue, ctx.attempt, ctx.meta)
        return await run_isolated(handler.function, context, data, timeout, grace)
    if handler.is_async:
        if timeout is None:
            return await handler.function(ctx, data)
        task = asyncio.ensure_future(handler.function(ctx, data))
        try:
            return await _bounded(task, timeout, grace)
        except asyncio.CancelledError:
            task.cancel()
            raise
    loop = asyncio.get_running_loop()
    ctx._loop = loop
    # A copy of this task's context, so the thread sees current_job() and correlation ids.
    run = contextvars.copy_context().run
    future = loop.run_in_executor(executor, run, handler.function, ctx, data)
    return await _bounded(future, timeout, grace)
