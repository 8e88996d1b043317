"""What a handler receives besides its data."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from conveyor.errors import LeaseLost
from conveyor.validation import encode_json

MAX_LOG_LINE = 4000
MAX_LOG_LINES = 100


@dataclass(slots=True)
class JobContext:
    """The running job as its handler sees it.

    ``attempt`` counts from 1. ``progress`` and ``log`` are fenced: after the lease is lost
    they raise :class:`LeaseLost` instead of writing.
    """

    id: str
    name: str
    queue: str
    attempt: int
    token: str
    meta: dict[str, str]
    options: dict[str, Any]
    worker_id: str
    _write: Callable[[str, str, str, str], Awaitable[int]]
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)
    #: UNIX seconds when the job became due: enqueue time plus its delay (for wait times).
    ready_at: float | None = None
    #: UNIX seconds when this attempt started.
    started_at: float = 0.0
    #: Reads a flow parent's children outcomes (None for jobs without children).
    _children: Callable[[], Awaitable[dict[str, Any]]] | None = field(default=None, repr=False)
    #: ``trace_id`` / ``span_id`` of the attempt's consumer span, set by
    #: :class:`conveyor.observability.tracing.TracingMiddleware` when the span records.
    trace_ids: dict[str, str] | None = field(default=None, repr=False)

    @property
    def correlation_id(self) -> str | None:
        return self.meta.get("correlation_id")

    @property
    def first_wait(self) -> float | None:
        """Seconds from due to start when this is the job's first activation, else None:
        only the first waited for a worker; later ones waited for a backoff."""
        if self.token != "1" or not self.ready_at:
            return None
        return max(self.started_at - self.ready_at, 0.0)

    async def progress(self, value: Any) -> None:
        """Report progress: a number or any JSON object (e.g. ``{"done": 3, "total": 10}``)."""
        await self._send(encode_json(value, "progress", 64 * 1024), "")

    async def log(self, line: str) -> None:
        """Append a line to the job's log (the last :data:`MAX_LOG_LINES` are kept)."""
        await self._send("", str(line)[:MAX_LOG_LINE] or " ")

    async def _send(self, progress: str, line: str) -> None:
        if not await self._write(self.id, self.token, progress, line):
            raise LeaseLost(f"job {self.id} is no longer held by this worker")

    async def children_results(self) -> dict[str, Any]:
        """A flow parent's finished children by job id: :class:`conveyor.ChildResult` with
        state, result and error (children whose failure policy is ``ignore`` and that failed
        are left out). Empty for a job without children."""
        return await self._children() if self._children is not None else {}

    def progress_sync(self, value: Any) -> None:
        """:meth:`progress` for sync handlers, which run in a thread."""
        self._from_thread(self.progress(value))

    def log_sync(self, line: str) -> None:
        """:meth:`log` for sync handlers, which run in a thread."""
        self._from_thread(self.log(line))

    def _from_thread(self, coroutine: Any) -> None:
        assert self._loop is not None, "only sync handlers run in a thread"
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()


#: The job the current task runs (the worker sets it in each job's own task).
CURRENT_JOB: ContextVar[JobContext | None] = ContextVar("conveyor_current_job", default=None)


def current_job() -> JobContext | None:
    """The context of the job this code runs in (a handler, or code it calls), else None.

    Sync handlers see it too: they run in a thread with a copy of the job's context.
    """
    return CURRENT_JOB.get()


def describe_error(error: BaseException, traceback_text: str | None) -> dict[str, Any]:
    return {
        "type": type(error).__name__,
        "message": str(error)[:2000],
        "traceback": (traceback_text or "")[-8000:],
    }


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
