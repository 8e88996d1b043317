"""Correlation ids: one id that follows a request through every job it causes.

The id comes from the job's ``meta["correlation_id"]`` when given at enqueue, otherwise from
the :data:`current` context variable, which a web framework integration sets per request
(:func:`bind`). Inside a job the worker binds the job's id, so child jobs inherit it.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import replace
from typing import Any

from conveyor.context import JobContext
from conveyor.errors import ValidationError
from conveyor.job import JobOptions
from conveyor.middleware import CallNext, Middleware

META_KEY = "correlation_id"
MAX_LENGTH = 200

#: The correlation id of the request or job this code runs for (None outside of one).
current: ContextVar[str | None] = ContextVar("conveyor_correlation_id", default=None)


class InvalidCorrelationId(ValidationError):
    """A correlation id must be a non-empty printable string of at most 200 characters."""


def check(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_LENGTH:
        raise InvalidCorrelationId(
            META_KEY, f"must be a non-empty string of at most {MAX_LENGTH} characters"
        )
    if not value.isprintable():
        raise InvalidCorrelationId(META_KEY, "must contain printable characters only")
    return value


def get() -> str | None:
    return current.get()


@contextlib.contextmanager
def bind(correlation_id: str | None) -> Iterator[str | None]:
    """Make ``correlation_id`` current for the block (e.g. a web request's X-Request-ID)."""
    token = current.set(None if correlation_id is None else check(correlation_id))
    try:
        yield correlation_id
    finally:
        current.reset(token)


class CorrelationMiddleware(Middleware):
    """Stamps a correlation id on every enqueued job and binds it while a job runs.

    ``generate=True`` gives jobs enqueued outside any request a fresh id, so each job tree
    still has one id.
    """

    def __init__(self, *, generate: bool = True) -> None:
        self.generate = generate

    def before_enqueue(self, queue: str, name: str, options: JobOptions) -> JobOptions:
        if META_KEY in options.meta:
            check(options.meta[META_KEY])
            return options
        value = current.get() or (uuid.uuid4().hex if self.generate else None)
        if value is None:
            return options
        return replace(options, meta={**options.meta, META_KEY: value})

    async def around_job(self, ctx: JobContext, data: Any, call_next: CallNext) -> Any:
        token = current.set(ctx.correlation_id)
        try:
            return await call_next()
        finally:
            current.reset(token)
