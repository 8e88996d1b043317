"""Worker processes the fault tests may kill, pause and terminate."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import conveyor
from conveyor import EmbeddedRedis, Queue
from tests.faults.handlers import GO, RUNS

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """``conveyor worker`` as a real child process serving the fault handlers."""

    def __init__(self, process: asyncio.subprocess.Process, log: Path) -> None:
        self.process = process
        self.log = log

    @classmethod
    async def start(cls, url: str, queue: str, log: Path, **options: Any) -> WorkerProcess:
        args = ["-m", "conveyor", "worker", "--app", "tests.faults.handlers:HANDLERS",
                "-q", queue, "--url", url]  # fmt: skip
        for name, value in options.items():
            args += [f"--{name.replace('_', '-')}", str(value)]
        env = {**os.environ, "FAULT_REDIS_URL": url, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}
        with log.open("ab") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable, *args, cwd=ROOT, env=env, stdout=out, stderr=out
            )
        return cls(process, log)

    @property
    def pid(self) -> int:
        return self.process.pid

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    async def wait(self, timeout: float) -> int:
        return await asyncio.wait_for(self.process.wait(), timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


@pytest.fixture
async def spawn(redis_server: EmbeddedRedis, queue_name: str, tmp_path: Path) -> AsyncIterator[Any]:
    """Start worker processes (on the session server unless ``url``); killed after the test."""
    started: list[WorkerProcess] = []

    async def make(url: str | None = None, **options: Any) -> WorkerProcess:
        log = tmp_path / f"worker-{len(started)}.log"
        worker = await WorkerProcess.start(url or redis_server.url, queue_name, log, **options)
        started.append(worker)
        return worker

    yield make
    for worker in started:
        with contextlib.suppress(ProcessLookupError):
            worker.process.send_signal(signal.SIGCONT)
        await worker.kill()


async def runs(queue: Queue) -> dict[str, int]:
    raw = await queue.connection.client.hgetall(RUNS)
    return {job_id: int(n) for job_id, n in raw.items()}


async def wait_for_events(
    queue: Queue, event: str, count: int, *, timeout: float = 30, after: str = "0"
) -> list[str]:
    """Follow the event stream until ``count`` events named ``event``; returns their job ids."""
    seen: list[str] = []

    async def follow() -> None:
        async for item in queue.events(after=after, block_ms=200):
            if item.event == event:
                seen.append(item.job_id)
                if len(seen) >= count:
                    return

    try:
        await asyncio.wait_for(follow(), timeout)
    except TimeoutError:
        raise AssertionError(f"saw {len(seen)} of {count} {event!r} events in {timeout}s") from None
    return seen


@pytest.fixture(autouse=True)
async def clean_runs(conn: conveyor.Connection) -> AsyncIterator[None]:
    await conn.client.delete(RUNS, GO)
    yield
