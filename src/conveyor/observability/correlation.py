"""Correlation ids: one id that follows a request through every job it causes.

The id comes from the job's ``meta["correlation_id"]`` when given at enqueue, otherwise from
the :data:`current` context variable, which a web framework integration sets per request
(:func:`bind`). Inside a job, the job's own id is current (read through
:func:`conveyor.current_job`), so child jobs and log lines inherit it.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import replace

from conveyor.context import CURRENT_JOB
from conveyor.errors import ValidationError
from conveyor.job import JobOptions
from conveyor.middleware import Middleware

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
    """The bound id (a request's), else the running job's, else None."""
    bound = current.get()
    if bound is not None:
        return bound
    job = CURRENT_JOB.get()
    return None if job is None else job.correlation_id


@contextlib.contextmanager
def bind(correlation_id: str | None) -> Iterator[str | None]:
    """Make ``correlation_id`` current for the block (e.g. a web request's X-Request-ID)."""
    token = current.set(None if correlation_id is None else check(correlation_id))
    try:
        yield correlation_id
    finally:
        current.reset(token)


class CorrelationMiddleware(Middleware):
    """Stamps the current correlation id (or, with ``generate=True``, a fresh one) on every
    enqueued job, so each job tree has one id.

    It needs no worker hook: while a job runs, :func:`get` already answers with the job's id.
    """

    def __init__(self, *, generate: bool = True) -> None:
        self.generate = generate

    def before_enqueue(self, queue: str, name: str, options: JobOptions) -> JobOptions:
        if META_KEY in options.meta:
            check(options.meta[META_KEY])
            return options
        value = get() or (uuid.uuid4().hex if self.generate else None)
        if value is None:
            return options
        return replace(options, meta={**options.meta, META_KEY: value})
