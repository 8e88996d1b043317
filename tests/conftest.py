"""Fixtures: private redis-server processes from conveyor.embedded, never the shared one."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import conveyor
from conveyor import EmbeddedRedis, Queue, Worker
from conveyor.config import Settings

_names = itertools.count()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """One server for the tests that do not harm it; each test gets its own queue names."""
    with EmbeddedRedis(tmp_path_factory.mktemp("redis"), appendonly=False) as server:
        yield server


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A server this test may kill, pause or restart (AOF on)."""
    server = EmbeddedRedis(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def settings() -> Settings:
    return Settings(stall_check_interval=0.2, lease_seconds=2.0, shutdown_grace=2.0)


@pytest.fixture
async def conn(
    redis_server: EmbeddedRedis, settings: Settings
) -> AsyncIterator[conveyor.Connection]:
    connection = await conveyor.connect(redis_server.url, settings=settings)
    yield connection
    await connection.close()


@pytest.fixture
def queue_name(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^\w.-]", "_", f"t{next(_names)}-{request.node.name[:40]}")


@pytest.fixture
def queue(conn: conveyor.Connection, queue_name: str) -> Queue:
    return Queue(queue_name, conn)


@contextlib.asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[Worker]:
    """Run ``worker`` in the background for the body of a ``async with``."""
    task = asyncio.create_task(worker.run())
    await worker.started.wait()
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)


@pytest.fixture
def start_worker(conn: conveyor.Connection, queue_name: str) -> Callable[..., Any]:
    def make(handlers: dict[str, Any], **options: Any) -> Any:
        return running(Worker(conn, [queue_name], handlers, **options))

    return make


async def wait_for_state(
    queue: Queue, job_id: str, *states: str, timeout: float = 10
) -> conveyor.Job:
    """Follow the event stream until the job reaches one of ``states``."""

    async def follow() -> conveyor.Job:
        async for _ in queue.events(after="0", block_ms=200):
            job = await queue.get_job(job_id)
            if job.state in states:
                return job
        raise AssertionError("unreachable")

    job = await queue.get_job(job_id)
    if job.state in states:
        return job
    try:
        return await asyncio.wait_for(follow(), timeout)
    except TimeoutError:
        job = await queue.get_job(job_id)
        raise AssertionError(
            f"job {job_id} still {job.state} after {timeout}s (wanted {states}); "
            f"attempts {job.attempts_made}, error {job.error}, counts {await queue.counts()}"
        ) from None


@pytest.fixture(autouse=True)
def conveyor_logger_restored() -> Iterator[None]:
    """``observability.logging.configure`` stops the ``conveyor`` logger propagating; the
    next test's ``caplog`` needs it back."""
    logger = logging.getLogger("conveyor")
    level, propagate = logger.level, logger.propagate
    yield
    logger.setLevel(level)
    logger.propagate = propagate
