"""celery: ``task.delay``; no bulk API; worker: ``celery worker --pool solo``.

celery is synchronous: the producer calls block (nothing else runs in the producer).
The solo pool runs tasks in the worker process itself; for noop tasks it beats prefork,
whose parent hands each task to a child over a pipe.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from celery import Celery, group

from adapters.base import QUEUE, Adapter, Data, bin_path, redis_url
from adapters.probe import hit

CHUNK = 1000

app = Celery("bench", broker=redis_url())
app.conf.task_default_queue = QUEUE


@app.task(name="noop")
def noop(data: Any) -> None:
    hit(data)


class _Producer:
    async def add(self, data: Data) -> None:
        noop.delay(data)

    async def add_bulk(self, items: list[Data]) -> None:
        for start in range(0, len(items), CHUNK):
            group(noop.s(item) for item in items[start : start + CHUNK]).apply_async()

    async def queued(self) -> int:
        with app.connection_for_write() as conn:
            return int(conn.default_channel.client.llen(QUEUE))

    async def close(self) -> None:
        app.close()


async def open_producer(url: str) -> _Producer:
    return _Producer()


def worker_command(url: str) -> list[str]:
    return [
        bin_path("celery"), "-A", "adapters.celery_", "worker", "--pool", "solo",
        "-Q", QUEUE, "--loglevel", "WARNING",
    ]  # fmt: skip


ADAPTER = Adapter(
    name="celery",
    version=version("celery"),
    open_producer=open_producer,
    worker_command=worker_command,
    bulk_label="no bulk API: group(...).apply_async() publishes each message with one producer",
    worker_label="celery worker --pool solo (prefetch multiplier 4, the default)",
)
