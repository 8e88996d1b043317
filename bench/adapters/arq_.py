"""arq: ``ArqRedis.enqueue_job``; no bulk API; worker: the ``arq`` command (asyncio)."""

from __future__ import annotations

import asyncio
from importlib.metadata import version
from typing import Any

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.constants import default_queue_name

from adapters.base import JOB, Adapter, Data, bin_path, concurrency, redis_url
from adapters.probe import hit

CONCURRENCY = concurrency(1000)
GATHER = 100  # concurrent calls; each needs its own pooled connection


async def noop(ctx: dict[str, Any], data: Any) -> None:
    hit(data)


class WorkerSettings:
    functions = [noop]
    redis_settings = RedisSettings.from_dsn(redis_url())
    max_jobs = CONCURRENCY


# arq logs every job at INFO; every library runs at WARNING so that logging costs the same.
LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"level": "WARNING", "class": "logging.StreamHandler"}},
    "loggers": {"arq": {"handlers": ["stderr"], "level": "WARNING"}},
}


class _Producer:
    def __init__(self, pool: ArqRedis) -> None:
        self.pool = pool

    async def add(self, data: Data) -> None:
        await self.pool.enqueue_job(JOB, data)

    async def add_bulk(self, items: list[Data]) -> None:
        for start in range(0, len(items), GATHER):
            chunk = items[start : start + GATHER]
            await asyncio.gather(*(self.pool.enqueue_job(JOB, item) for item in chunk))

    async def queued(self) -> int:
        return int(await self.pool.zcard(default_queue_name))

    async def close(self) -> None:
        await self.pool.aclose()


async def open_producer(url: str) -> _Producer:
    return _Producer(await create_pool(RedisSettings.from_dsn(url)))


def worker_command(url: str) -> list[str]:
    return [
        bin_path("arq"), "adapters.arq_.WorkerSettings",
        "--custom-log-dict", "adapters.arq_.LOG_CONFIG",
    ]  # fmt: skip


ADAPTER = Adapter(
    name="arq",
    version=version("arq"),
    open_producer=open_producer,
    worker_command=worker_command,
    bulk_label=f"no bulk API: {GATHER:,} concurrent enqueue_job calls per asyncio.gather",
    worker_label=f"arq worker, max_jobs={CONCURRENCY}",
)
