"""Structured logs: one event per job transition, JSON for machines, plain lines for people.

:func:`configure` installs a handler on the ``conveyor`` logger: human-readable when the
stream is a terminal, one JSON object per line elsewhere. :class:`LoggingMiddleware` logs
``job.enqueue`` (producer), ``job.started``, then ``job.completed`` / ``job.retry`` /
``job.dead`` / ``job.cancelled`` with queue, job name, id, attempt, duration, worker id,
correlation id and trace ids. Every record passes through :mod:`conveyor.redaction`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import replace
from json.encoder import encode_basestring_ascii as _quote
from typing import IO, Any, Literal

from conveyor.context import JobContext
from conveyor.errors import ConfigError
from conveyor.job import JobOptions
from conveyor.middleware import Middleware
from conveyor.observability import correlation
from conveyor.redaction import DEFAULT, Redactor

LOGGER = "conveyor"
EVENTS = logging.getLogger("conveyor.jobs")
FIELDS = "conveyor"  # the LogRecord attribute holding an event's structured fields
# Where LoggingMiddleware puts its own fields: fixed keys whose only free text (the error)
# is redacted before logging, so the formatter need not look at each value again.
_CLEAN = "_conveyor_clean"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
OUTCOME_LEVELS = {
    "completed": logging.INFO,
    "cancelled": logging.INFO,
    "retry": logging.WARNING,
    "dead": logging.ERROR,
}
_START = time.time()  # for relativeCreated; close enough to logging's own start time
_RESERVED = frozenset(vars(logging.makeLogRecord({})))
Format = Literal["auto", "json", "console"]


def trace_ids() -> dict[str, str]:
    """The current OpenTelemetry trace and span ids, if OpenTelemetry is in use at all."""
    otel = sys.modules.get("opentelemetry.trace")
    if otel is None:  # never imported: no tracing, and no import cost here
        return {}
    context = otel.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


def _from_traceparent(value: str | None) -> dict[str, str]:
    parts = (value or "").split("-")
    if len(parts) != 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
        return {}
    return {"trace_id": parts[1], "span_id": parts[2]}


def _fields(record: logging.LogRecord, redactor: Redactor) -> dict[str, Any]:
    clean = getattr(record, _CLEAN, None)
    if clean is not None:
        return dict(clean)
    given = getattr(record, FIELDS, None)
    if given is not None:
        fields: dict[str, Any] = dict(given)
    else:  # a plain logging call: its ``extra=`` fields count too
        fields = {
            k: v for k, v in vars(record).items() if k not in _RESERVED and not k.startswith("_")
        }
    if "correlation_id" not in fields and (current := correlation.get()) is not None:
        fields["correlation_id"] = current
    if "trace_id" not in fields:
        fields.update(trace_ids())
    return redactor.mapping(fields)


_dumps = json.JSONEncoder(separators=(",", ":"), default=str).encode


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event, then the event's fields."""

    def __init__(self, redactor: Redactor = DEFAULT) -> None:
        super().__init__()
        self.redactor = redactor
        self._heads: dict[tuple[int, str, object], str] = {}  # level/logger/event, encoded

    def head(self, levelno: int, logger: str, event: str) -> str:
        """``"level":…,"logger":…,"event":…`` for a line, encoded once per combination."""
        key = (levelno, logger, event)
        head = self._heads.get(key)
        if head is None:
            level = logging.getLevelName(levelno).lower()
            encoded = _dumps({"level": level, "logger": logger, "event": event})
            head = self._heads[key] = encoded[1:-1]
        return head

    def format(self, record: logging.LogRecord) -> str:
        clean = getattr(record, _CLEAN, None)
        if clean is not None and not record.exc_info:
            # The per-job path: fixed keys, values already safe; one dumps call.
            head = self.head(record.levelno, record.name, record.msg)
            return f'{{"ts":{record.created:.6f},{head},{_dumps(clean)[1:]}'

        entry: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": self.redactor.text(record.getMessage()),
        }
        entry.update(_fields(record, self.redactor))
        if record.exc_info:
            entry["exception"] = self.redactor.text(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, separators=(",", ":"))


class ConsoleFormatter(logging.Formatter):
    """``12:00:01 INFO  job.completed queue=emails name=send id=… duration_ms=12``."""

    def __init__(self, redactor: Redactor = DEFAULT) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        pairs = " ".join(f"{k}={v}" for k, v in _fields(record, self.redactor).items())
        line = f"{clock} {record.levelname:<5} {self.redactor.text(record.getMessage())}"
        line = f"{line} {pairs}" if pairs else line
        if record.exc_info:
            line += "\n" + self.redactor.text(self.formatException(record.exc_info))
        return line


class BatchingStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Flushes at WARNING and above at once, other lines at most ``interval`` seconds late.

    A flush is a system call per line, which stalls the worker's event loop; a daemon
    thread flushes what is pending so nothing waits longer than ``interval``.
    """

    def __init__(self, stream: IO[str], interval: float = 0.5) -> None:
        super().__init__(stream)
        self.interval = interval
        self._dirty = False
        self._closed = False
        self._flusher: threading.Thread | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)
            return
        self._written(record.levelno)

    def write_lines(self, text: str, levelno: int) -> None:
        """Write already formatted lines (each ending in a newline) at ``levelno``."""
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            self.stream.write(text)
            self._written(levelno)

    def _written(self, levelno: int) -> None:
        if levelno >= logging.WARNING:
            self.flush()
            return
        self._dirty = True
        if self._flusher is None:
            self._flusher = threading.Thread(target=self._flush_pending, daemon=True)
            self._flusher.start()

    def _flush_pending(self) -> None:
        while not self._closed:
            time.sleep(self.interval)
            if self._dirty:
                try:
                    self.flush()
                except (OSError, ValueError):  # the stream was closed under us
                    return

    def flush(self) -> None:
        self._dirty = False
        super().flush()

    def close(self) -> None:
        self._closed = True
        self.flush()
        super().close()


def check_level(level: str | int) -> int:
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    if not isinstance(level, str) or level.upper() not in LEVELS:
        raise ConfigError("log_level", f"use one of {', '.join(LEVELS)}, got {level!r}")
    return int(logging.getLevelName(level.upper()))


def configure(
    level: str | int | None = None,
    *,
    format: Format = "auto",
    stream: IO[str] | None = None,
    redactor: Redactor = DEFAULT,
    propagate: bool = False,
) -> logging.Handler:
    """Send Conveyor's logs to ``stream`` (stderr): console format on a terminal, JSON
    elsewhere. ``level`` defaults to ``CONVEYOR_LOG_LEVEL``. Replaces a handler this function
    installed before, so calling it twice does not duplicate lines.

    ``propagate=False`` keeps the lines from also reaching the root logger's handlers (an
    application's ``basicConfig`` would print each line a second time, in its own format).
    """
    if level is None:
        from conveyor.config import load_settings

        level = load_settings().log_level
    numeric = check_level(level)
    if format not in ("auto", "json", "console"):
        raise ConfigError("log_format", f"use auto, json or console, got {format!r}")
    stream = stream or sys.stderr
    tty = format == "console" or (format == "auto" and stream.isatty())
    handler = BatchingStreamHandler(stream) if not tty else logging.StreamHandler(stream)
    handler.setFormatter(ConsoleFormatter(redactor) if tty else JsonFormatter(redactor))
    handler.set_name("conveyor.observability")
    logger = logging.getLogger(LOGGER)
    for old in [h for h in logger.handlers if h.get_name() == "conveyor.observability"]:
        logger.removeHandler(old)
        old.close()
    logger.addHandler(handler)
    logger.setLevel(numeric)
    logger.propagate = propagate
    return handler


_LIVE: weakref.WeakSet[LoggingMiddleware] = weakref.WeakSet()


def _after_fork() -> None:
    for middleware in list(_LIVE):
        middleware.refresh_template()


os.register_at_fork(after_in_child=_after_fork)


def _patched(cls: type[logging.Logger]) -> bool:
    """Whether record handling was replaced (a subclass, or a tool such as an error
    tracker that wraps ``callHandlers`` to see every record): then logging must see them."""
    return cls.handle.__module__ != "logging" or cls.callHandlers.__module__ != "logging"


def direct_handler(logger: logging.Logger, level: int) -> BatchingStreamHandler | None:
    """The one handler a record at ``level`` on ``logger`` would reach, if it is a JSON
    :class:`BatchingStreamHandler` and nothing on the way filters: then a line may be
    written to it directly, without a LogRecord, and reads exactly as ``logging`` would
    have written it. None otherwise (other handlers, filters, another format)."""
    found: BatchingStreamHandler | None = None
    current: logging.Logger | None = logger
    if logger.filters or logger.disabled or _patched(type(logger)):
        return None
    while current is not None:
        for handler in current.handlers:
            if (
                found is not None
                or type(handler) is not BatchingStreamHandler
                or type(handler.formatter) is not JsonFormatter
                or handler.filters
                or level < handler.level
            ):
                return None
            found = handler
        if not current.propagate:
            break
        current = current.parent
    return found


def _trace_of(ctx: JobContext) -> dict[str, str]:
    """The attempt's span (set by TracingMiddleware), else the producer's from the job."""
    if ctx.trace_ids is not None:
        return ctx.trace_ids
    traceparent = ctx.meta.get("traceparent")
    return _from_traceparent(traceparent) if traceparent else {}


def _completed_lines(start: str, completed: Sequence[tuple[JobContext, float]]) -> str:
    """``job.completed`` lines after ``start`` (timestamp and head): the keys and order of
    :meth:`LoggingMiddleware.job_finished`'s fields, each value encoded as ``json.dumps``
    would. Written out by hand because it runs for every job a worker completes."""
    lines = []
    queue = name = worker = prefix = middle = ""
    for ctx, duration in completed:
        if ctx.queue != queue or ctx.name != name or ctx.worker_id != worker:
            queue, name, worker = ctx.queue, ctx.name, ctx.worker_id
            prefix = f'{start},"queue":{_quote(queue)},"name":{_quote(name)},"job_id":'
            middle = f',"worker_id":{_quote(worker)},"correlation_id":'
        meta = ctx.meta
        correlation_id = meta.get(correlation.META_KEY)
        ids = _trace_of(ctx)
        end = (
            f',"trace_id":{_quote(ids["trace_id"])},"span_id":{_quote(ids["span_id"])}}}\n'
            if ids
            else "}\n"
        )
        lines.append(
            f'{prefix}{_quote(ctx.id)},"attempt":{ctx.attempt}{middle}'
            f"{'null' if correlation_id is None else _quote(correlation_id)}"
            f',"duration_ms":{round(duration * 1000, 3)!r}{end}'
        )
    return "".join(lines)


class LoggingMiddleware(Middleware):
    """Logs one event per job transition on the ``conveyor.jobs`` logger.

    ``started_level`` sets the level of ``job.started``: DEBUG by default, because the outcome
    line already names the attempt and its duration and a busy worker pays per line.
    ``completed_level`` (INFO) sets that of ``job.completed``. Enqueues without a job id get
    one here, so the producer's line names the id the worker's lines will show.

    Completions come a batch at a time; when the only handler they would reach is the JSON
    one :func:`configure` installs, the batch's lines are formatted here and written with one
    call (the same bytes ``logging`` would write, for a few µs a line instead of ~30).
    """

    def __init__(
        self,
        logger: logging.Logger = EVENTS,
        *,
        started_level: str | int = logging.DEBUG,
        completed_level: str | int = logging.INFO,
        redactor: Redactor = DEFAULT,
    ) -> None:
        self.logger = logger
        self.started_level = check_level(started_level)
        self.completed_level = check_level(completed_level)
        self.redactor = redactor
        self._template: dict[str, Any] = {}
        self.refresh_template()
        _LIVE.add(self)

    def refresh_template(self) -> None:
        """Record the process and thread the lines come from (again after a fork)."""
        record = logging.LogRecord(self.logger.name, 0, __file__, 0, "", None, None)
        self._template = vars(record)

    def _log(self, level: int, event: str, fields: Mapping[str, Any]) -> None:
        if not self.logger.isEnabledFor(level):
            return
        # Copied from a template: LogRecord() would look up the caller, thread and process
        # names for every job, the costliest part of a line. Hooks run on the loop thread.
        record = object.__new__(logging.LogRecord)
        attributes = record.__dict__
        attributes.update(self._template)
        now = time.time()
        attributes.update(
            created=now, msecs=(now - int(now)) * 1000, levelno=level, msg=event,
            levelname=logging.getLevelName(level), relativeCreated=(now - _START) * 1000,
        )  # fmt: skip
        attributes[_CLEAN] = fields
        self.logger.handle(record)

    def before_enqueue(self, queue: str, name: str, options: JobOptions) -> JobOptions:
        if not self.logger.isEnabledFor(logging.INFO):
            return options
        if options.job_id is None:
            options = replace(options, job_id=uuid.uuid4().hex)
        meta = options.meta
        fields: dict[str, Any] = {"queue": queue, "name": name, "job_id": options.job_id}
        fields["correlation_id"] = meta.get(correlation.META_KEY) or correlation.get()
        fields.update(_from_traceparent(meta.get("traceparent")) or trace_ids())
        self._log(logging.INFO, "job.enqueue", fields)
        return options

    def _job_fields(self, ctx: JobContext) -> dict[str, Any]:
        return {
            "queue": ctx.queue, "name": ctx.name, "job_id": ctx.id, "attempt": ctx.attempt,
            "worker_id": ctx.worker_id, "correlation_id": ctx.correlation_id,
        }  # fmt: skip

    def job_started(self, ctx: JobContext) -> None:
        if self.logger.isEnabledFor(self.started_level):
            ids = trace_ids() or _trace_of(ctx)  # within the attempt's span, if any
            self._log(self.started_level, "job.started", {**self._job_fields(ctx), **ids})

    def job_finished(
        self, ctx: JobContext, outcome: str, duration: float, error: BaseException | None
    ) -> None:
        level = self.completed_level if outcome == "completed" else OUTCOME_LEVELS[outcome]
        if not self.logger.isEnabledFor(level):
            return
        fields = self._job_fields(ctx)
        fields["duration_ms"] = round(duration * 1000, 3)
        if error is not None:
            fields["error_type"] = type(error).__name__
            fields["error"] = self.redactor.text(str(error)[:2000])
        fields.update(_trace_of(ctx))
        self._log(level, f"job.{outcome}", fields)

    def jobs_completed(self, completed: Sequence[tuple[JobContext, float]]) -> None:
        level = self.completed_level
        if not self.logger.isEnabledFor(level):
            return
        handler = direct_handler(self.logger, level)
        if handler is None:
            for ctx, duration in completed:
                self.job_finished(ctx, "completed", duration, None)
            return
        assert isinstance(handler.formatter, JsonFormatter)
        head = handler.formatter.head(level, self.logger.name, "job.completed")
        handler.write_lines(_completed_lines(f'{{"ts":{time.time():.6f},{head}', completed), level)

    def lease_lost(self, queue: str, job_id: str) -> None:
        self._log(logging.WARNING, "job.lease_lost", {"queue": queue, "job_id": job_id})

    def stalled(self, queue: str, requeued: int, dead: int) -> None:
        self._log(
            logging.WARNING, "queue.stalled", {"queue": queue, "requeued": requeued, "dead": dead}
        )
