"""bullmq (Python port): ``Queue.add`` / ``Queue.addBulk``; worker: ``bullmq.Worker``.

The Python port has no worker command; its documented way to run workers is a script that
creates a ``Worker`` and keeps the event loop alive, which ``python -m adapters.bullmq_``
does until SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from importlib.metadata import version
from typing import Any

from bullmq import Queue, Worker

from adapters.base import JOB, QUEUE, Adapter, Data, concurrency, redis_url
from adapters.probe import hit

CONCURRENCY = concurrency(10)
CHUNK = 1000


async def noop(job: Any, token: str) -> None:
    hit(job.data)


class _Producer:
    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    async def add(self, data: Data) -> None:
        await self.queue.add(JOB, data)

    async def add_bulk(self, items: list[Data]) -> None:
        for start in range(0, len(items), CHUNK):
            chunk = items[start : start + CHUNK]
            await self.queue.addBulk([{"name": JOB, "data": item} for item in chunk])

    async def queued(self) -> int:
        return int(await self.queue.getJobCountByTypes("wait"))

    async def close(self) -> None:
        await self.queue.close()


async def open_producer(url: str) -> _Producer:
    return _Producer(Queue(QUEUE, {"connection": url}))


async def serve() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    worker = Worker(QUEUE, noop, {"connection": redis_url(), "concurrency": CONCURRENCY})
    await stop.wait()
    await worker.close()


def worker_command(url: str) -> list[str]:
    return [sys.executable, "-m", "adapters.bullmq_"]


ADAPTER = Adapter(
    name="bullmq",
    version=version("bullmq"),
    open_producer=open_producer,
    worker_command=worker_command,
    bulk_label=f"Queue.addBulk ({CHUNK:,} jobs per call)",
    worker_label=f"bullmq.Worker in a script, concurrency={CONCURRENCY}",
)

if __name__ == "__main__":
    asyncio.run(serve())
