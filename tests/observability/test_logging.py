"""Structured logs: one correlation id from producer through worker to child job; redaction."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import conveyor
from conveyor import JobContext, JobOptions, Queue, Worker
from conveyor.observability import correlation
from conveyor.observability.correlation import CorrelationMiddleware, InvalidCorrelationId
from conveyor.observability.logging import (
    BatchingStreamHandler,
    JsonFormatter,
    LoggingMiddleware,
    configure,
    direct_handler,
)
from tests.conftest import running, wait_for_state


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = configure("INFO", stream=stream)
    yield stream
    logging.getLogger("conveyor").removeHandler(handler)
    handler.close()


def drop_pytest_handlers() -> None:
    """Leave ``configure``'s handler the only one: as each test starts, pytest attaches its
    own to loggers that do not propagate (as ``configure`` leaves ``conveyor``), and takes
    them off again when it ends."""
    logger = logging.getLogger("conveyor")
    for handler in [h for h in logger.handlers if h.get_name() != "conveyor.observability"]:
        logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_one_correlation_id_across_producer_worker_and_child(
    conn: conveyor.Connection, queue_name: str, captured: io.StringIO
) -> None:
    stack = [CorrelationMiddleware(), LoggingMiddleware(started_level="INFO")]
    queue = Queue(queue_name, conn, middleware=stack)
    done = asyncio.Event()

    async def parent(ctx: JobContext, data: Any) -> None:
        logging.getLogger("conveyor.app").info("parent working")
        await queue.add("child", {"n": 1})

    async def child(ctx: JobContext, data: Any) -> None:
        done.set()

    with correlation.bind("req-42"):
        first = await queue.add("parent")
    assert correlation.get() is None
    worker = Worker(conn, [queue_name], {"parent": parent, "child": child}, middleware=stack)
    async with running(worker):
        await asyncio.wait_for(done.wait(), 10)
        await wait_for_state(queue, first.id, "completed")
    events = lines(captured)
    jobs = [e for e in events if e["logger"] == "conveyor.jobs"]
    seen = [(e["event"], e["name"]) for e in jobs]
    for name in ("parent", "child"):
        for event in ("job.enqueue", "job.started", "job.completed"):
            assert seen.count((event, name)) == 1, (event, name, seen)
    assert {e["correlation_id"] for e in jobs} == {"req-42"}
    inside = [e for e in events if e["event"] == "parent working"]
    assert [e["correlation_id"] for e in inside] == ["req-42"]
    enqueue = next(e for e in jobs if e["event"] == "job.enqueue" and e["name"] == "parent")
    assert enqueue["job_id"] == first.id  # the producer's line names the worker's job
    done_line = next(e for e in jobs if e["event"] == "job.completed" and e["name"] == "child")
    assert done_line["worker_id"] == worker.id and done_line["attempt"] == 1
    assert done_line["queue"] == queue_name and done_line["duration_ms"] >= 0


async def test_failures_are_logged_redacted(
    conn: conveyor.Connection, queue_name: str, captured: io.StringIO
) -> None:
    queue = Queue(queue_name, conn, middleware=[CorrelationMiddleware(generate=False)])

    async def leaky(ctx: JobContext, data: Any) -> None:
        raise RuntimeError("login failed for redis://app:hunter2@db:6379 password=hunter2")

    job = await queue.add("leaky", None, JobOptions(attempts=1))
    worker = Worker(conn, [queue_name], {"leaky": leaky}, middleware=[LoggingMiddleware()])
    async with running(worker):
        await wait_for_state(queue, job.id, "dead")
    text = captured.getvalue()
    assert "hunter2" not in text
    dead = next(e for e in lines(captured) if e["event"] == "job.dead")
    assert dead["level"] == "error" and dead["error_type"] == "RuntimeError"
    assert "[REDACTED]" in dead["error"] and dead["correlation_id"] is None


def test_console_format_on_a_terminal_and_levels() -> None:
    stream = Tty()
    handler = configure("WARNING", stream=stream)
    try:
        log = logging.getLogger("conveyor.jobs")
        log.info("hidden")
        log.warning("job.retry", extra={"conveyor": {"queue": "q", "api_key": "abc"}})
        text = stream.getvalue()
        assert "hidden" not in text
        assert "WARNING job.retry queue=q api_key=[REDACTED]" in text
        assert not text.startswith("{")
    finally:
        logging.getLogger("conveyor").removeHandler(handler)
        handler.close()
    with pytest.raises(conveyor.ConfigError) as error:
        configure("LOUD")
    assert error.value.field == "log_level"
    with pytest.raises(conveyor.ConfigError):
        configure("INFO", format="xml")  # type: ignore[arg-type]


def test_correlation_ids_are_checked_and_generated() -> None:
    middleware = CorrelationMiddleware()
    stamped = middleware.before_enqueue("q", "n", JobOptions(job_id="keep"))
    assert stamped.job_id == "keep" and len(stamped.meta["correlation_id"]) == 32
    given = middleware.before_enqueue("q", "n", JobOptions(meta={"correlation_id": "abc"}))
    assert given.meta["correlation_id"] == "abc"
    with pytest.raises(InvalidCorrelationId) as error:
        middleware.before_enqueue("q", "n", JobOptions(meta={"correlation_id": ""}))
    assert error.value.field == "correlation_id"
    with pytest.raises(InvalidCorrelationId), correlation.bind("bad\nid"):
        pass
    assert CorrelationMiddleware(generate=False).before_enqueue("q", "n", JobOptions()).meta == {}


def test_records_name_the_process_after_a_fork() -> None:
    seen: list[int] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.process or 0)

    logger = logging.getLogger("conveyor.test_fork")
    logger.addHandler(Keep())
    logger.setLevel(logging.INFO)
    middleware = LoggingMiddleware(logger)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports the pid its line carried, then leaves at once
        middleware.lease_lost("q", "j")
        os.write(write, str(seen[-1]).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    assert int(os.read(read, 32)) == pid
    middleware.lease_lost("q", "j")
    assert seen == [os.getpid()]


class Flushes(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.flushed = threading.Event()

    def flush(self) -> None:
        super().flush()
        self.flushed.set()


def test_info_lines_are_flushed_soon_warnings_at_once() -> None:
    stream = Flushes()
    handler = BatchingStreamHandler(stream, interval=0.05)
    handler.setFormatter(JsonFormatter())
    info = logging.makeLogRecord({"msg": "job.completed", "levelno": logging.INFO})
    handler.handle(info)
    assert not stream.flushed.is_set()  # no system call per line
    assert stream.flushed.wait(5)  # but the flusher thread got to it
    stream.flushed.clear()
    warning = logging.makeLogRecord({"msg": "job.retry", "levelno": logging.WARNING})
    handler.handle(warning)
    assert stream.flushed.is_set()
    assert [json.loads(line)["event"] for line in stream.getvalue().splitlines()] == [
        "job.completed",
        "job.retry",
    ]
    handler.close()


def job_context(**changes: Any) -> JobContext:
    fields: dict[str, Any] = dict(
        id="job-1", name="send", queue="mail", attempt=2, token="1", options={},
        meta={"correlation_id": 'req "quoted" \u00e9\n'}, worker_id="host-1-abc", _write=None,
    )  # fmt: skip
    return JobContext(**(fields | changes))


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_batched_completion_lines_read_as_the_logging_path_writes_them(
    captured: io.StringIO,
) -> None:
    drop_pytest_handlers()
    middleware = LoggingMiddleware()
    traced = job_context(id="job-2", trace_ids={"trace_id": "a" * 32, "span_id": "b" * 16})
    producer = job_context(id="job-3", meta={"traceparent": f"00-{'c' * 32}-{'d' * 16}-01"})
    batch = [(job_context(), 0.01234567), (traced, 1.5), (producer, 0.0)]
    assert direct_handler(middleware.logger, logging.INFO) is not None
    middleware.jobs_completed(batch)  # the direct path: the JSON handler is the only one
    direct = captured.getvalue().splitlines()
    extra = Collect()
    logging.getLogger("conveyor").addHandler(extra)  # now logging must see every record
    try:
        middleware.jobs_completed(batch)
    finally:
        logging.getLogger("conveyor").removeHandler(extra)
    through_logging = captured.getvalue().splitlines()[len(direct) :]
    assert [r.getMessage() for r in extra.records] == ["job.completed"] * 3
    assert len(direct) == len(through_logging) == 3
    for fast, slow in zip(direct, through_logging, strict=True):
        assert fast.split(",", 1)[1] == slow.split(",", 1)[1]  # byte for byte after "ts"
    first, second, third = (json.loads(line) for line in direct)
    assert first["correlation_id"] == 'req "quoted" \u00e9\n'
    assert first["duration_ms"] == 12.346 and first["attempt"] == 2
    assert (second["trace_id"], second["span_id"]) == ("a" * 32, "b" * 16)
    assert (third["trace_id"], third["correlation_id"]) == ("c" * 32, None)


def test_direct_writes_only_where_logging_would_write_the_same(captured: io.StringIO) -> None:
    drop_pytest_handlers()
    jobs, root = logging.getLogger("conveyor.jobs"), logging.getLogger("conveyor")
    (handler,) = root.handlers
    assert direct_handler(jobs, logging.INFO) is handler
    handler.setLevel(logging.INFO)
    assert direct_handler(jobs, logging.DEBUG) is None  # below the handler's level
    handler.setLevel(logging.NOTSET)
    for add, remove in [
        (lambda: jobs.addFilter(lambda r: True), lambda: jobs.filters.clear()),
        (lambda: handler.addFilter(lambda r: True), lambda: handler.filters.clear()),
        (lambda: jobs.addHandler(Collect()), lambda: jobs.handlers.clear()),
    ]:
        add()
        assert direct_handler(jobs, logging.INFO) is None
        remove()
    handler.setFormatter(logging.Formatter())  # a format of the user's own
    assert direct_handler(jobs, logging.INFO) is None
    handler.setFormatter(JsonFormatter())
    jobs.propagate = False
    try:
        assert direct_handler(jobs, logging.INFO) is None  # the line would reach nothing
    finally:
        jobs.propagate = True
    root.propagate = True  # configure() stopped it: the root logger's handlers count too
    assert direct_handler(jobs, logging.INFO) is None  # pytest's, here
    root.propagate = False
    real_call_handlers = logging.Logger.callHandlers

    def call_handlers(self: logging.Logger, record: logging.LogRecord) -> None:
        real_call_handlers(self, record)  # an error tracker's wrapper, say

    logging.Logger.callHandlers = call_handlers  # type: ignore[method-assign]
    try:
        assert direct_handler(jobs, logging.INFO) is None
    finally:
        logging.Logger.callHandlers = real_call_handlers  # type: ignore[method-assign]
    assert direct_handler(jobs, logging.INFO) is handler


async def test_sync_and_async_handlers_see_their_job_and_its_correlation_id(
    conn: conveyor.Connection, queue_name: str
) -> None:
    seen: dict[str, tuple[str | None, str | None]] = {}

    def observe(ctx: JobContext, data: Any) -> None:
        job = conveyor.current_job()
        seen[ctx.name] = (job.id if job else None, correlation.get())

    async def observe_async(ctx: JobContext, data: Any) -> None:
        observe(ctx, data)

    queue = Queue(queue_name, conn)
    options = JobOptions(meta={"correlation_id": "req-7"})
    jobs = [await queue.add(name, None, options) for name in ("sync", "async")]
    worker = Worker(conn, [queue_name], {"sync": observe, "async": observe_async})
    async with running(worker):
        for job in jobs:
            await wait_for_state(queue, job.id, "completed")
    assert seen == {"sync": (jobs[0].id, "req-7"), "async": (jobs[1].id, "req-7")}
    assert conveyor.current_job() is None and correlation.get() is None
