"""taskiq + taskiq-redis: ``task.kiq``; no bulk API; worker: ``taskiq worker``.

Broker: ``RedisStreamBroker``, taskiq-redis's broker with acknowledgements (at-least-once,
like Conveyor); ``ListQueueBroker`` pops without acknowledging.
"""

from __future__ import annotations

import asyncio
from importlib.metadata import version
from typing import Any

from redis.asyncio import Redis
from taskiq_redis import RedisStreamBroker

from adapters.base import QUEUE, Adapter, Data, bin_path, concurrency, redis_url
from adapters.probe import hit

CONCURRENCY = concurrency(100)
GATHER = 100  # concurrent calls; each needs its own pooled connection

broker = RedisStreamBroker(url=redis_url(), queue_name=QUEUE)


@broker.task(task_name="noop")
async def noop(data: Any) -> None:
    hit(data)


class _Producer:
    async def add(self, data: Data) -> None:
        await noop.kiq(data)

    async def add_bulk(self, items: list[Data]) -> None:
        for start in range(0, len(items), GATHER):
            chunk = items[start : start + GATHER]
            await asyncio.gather(*(noop.kiq(item) for item in chunk))

    async def queued(self) -> int:
        async with Redis(connection_pool=broker.connection_pool) as client:
            return int(await client.xlen(QUEUE))

    async def close(self) -> None:
        await broker.shutdown()


async def open_producer(url: str) -> _Producer:
    await broker.startup()
    return _Producer()


def worker_command(url: str) -> list[str]:
    return [
        bin_path("taskiq"), "worker", "adapters.taskiq_:broker", "--workers", "1",
        "--max-async-tasks", str(CONCURRENCY), "--log-level", "WARNING",
    ]  # fmt: skip


ADAPTER = Adapter(
    name="taskiq",
    version=f"{version('taskiq')} + taskiq-redis {version('taskiq-redis')}",
    open_producer=open_producer,
    worker_command=worker_command,
    bulk_label=f"no bulk API: {GATHER:,} concurrent kiq calls per asyncio.gather",
    worker_label=f"taskiq worker --workers 1 --max-async-tasks {CONCURRENCY}",
)
