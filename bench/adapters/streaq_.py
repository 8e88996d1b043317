"""streaq: ``task.enqueue`` / ``Worker.enqueue_many``; worker: ``streaq run`` (asyncio)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from importlib.metadata import version
from typing import Any

from streaq import Worker

from adapters.base import QUEUE, Adapter, Data, bin_path, concurrency, redis_url
from adapters.probe import hit

CONCURRENCY = concurrency(100)
CHUNK = 1000


@asynccontextmanager
async def _quiet() -> AsyncIterator[None]:
    # streaq logs every task at INFO and configures logging after importing this module;
    # every library runs at WARNING so that logging costs the same.
    logging.getLogger("streaq").setLevel(logging.WARNING)
    yield


worker = Worker(redis_url=redis_url(), queue_name=QUEUE, concurrency=CONCURRENCY, lifespan=_quiet)


@worker.task
async def noop(data: Any) -> None:
    hit(data)


class _Producer:
    def __init__(self, stack: AsyncExitStack) -> None:
        self.stack = stack

    async def add(self, data: Data) -> None:
        await noop.enqueue(data)

    async def add_bulk(self, items: list[Data]) -> None:
        for start in range(0, len(items), CHUNK):
            await worker.enqueue_many([noop.enqueue(item) for item in items[start : start + CHUNK]])

    async def queued(self) -> int:
        return await worker.queue_size()

    async def close(self) -> None:
        await self.stack.aclose()


async def open_producer(url: str) -> _Producer:
    stack = AsyncExitStack()
    await stack.enter_async_context(worker)
    return _Producer(stack)


def worker_command(url: str) -> list[str]:
    return [bin_path("streaq"), "run", "adapters.streaq_:worker"]


ADAPTER = Adapter(
    name="streaq",
    version=version("streaq"),
    open_producer=open_producer,
    worker_command=worker_command,
    bulk_label=f"Worker.enqueue_many (one pipeline per {CHUNK:,} jobs)",
    worker_label=f"streaq run, concurrency={CONCURRENCY}",
)
