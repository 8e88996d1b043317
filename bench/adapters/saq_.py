"""saq: ``Queue.enqueue``; no bulk API; worker: the ``saq`` command (asyncio)."""

from __future__ import annotations

import asyncio
from importlib.metadata import version
from typing import Any

from saq import Queue

from adapters.base import JOB, QUEUE, Adapter, Data, bin_path, concurrency, redis_url
from adapters.probe import hit

CONCURRENCY = concurrency(10)
GATHER = 100  # concurrent calls; each needs its own pooled connection


async def noop(ctx: dict[str, Any], *, data: Any) -> None:
    hit(data)


def settings() -> dict[str, Any]:
    """Read by ``saq adapters.saq_.settings`` in the worker process."""
    return {
        "queue": Queue.from_url(redis_url(), name=QUEUE),
        "functions": [("noop", noop)],
        "concurrency": CONCURRENCY,
    }


class _Producer:
    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    async def add(self, data: Data) -> None:
        await self.queue.enqueue(JOB, data=data)

    async def add_bulk(self, items: list[Data]) -> None:
        for start in range(0, len(items), GATHER):
            chunk = items[start : start + GATHER]
            await asyncio.gather(*(self.queue.enqueue(JOB, data=item) for item in chunk))

    async def queued(self) -> int:
        return await self.queue.count("queued")

    async def close(self) -> None:
        await self.queue.disconnect()


async def open_producer(url: str) -> _Producer:
    queue = Queue.from_url(url, name=QUEUE)
    await queue.connect()
    return _Producer(queue)


def worker_command(url: str) -> list[str]:
    return [bin_path("saq"), "adapters.saq_.settings"]


ADAPTER = Adapter(
    name="saq",
    version=version("saq"),
    open_producer=open_producer,
    worker_command=worker_command,
    bulk_label=f"no bulk API: {GATHER:,} concurrent enqueue calls per asyncio.gather",
    worker_label=f"saq worker, concurrency={CONCURRENCY}",
)
