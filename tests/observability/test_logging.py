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
