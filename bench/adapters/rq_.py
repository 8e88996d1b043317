"""rq: ``Queue.enqueue`` / ``Queue.enqueue_many``; worker: ``rq worker`` with SimpleWorker.

rq is synchronous: the producer calls block (nothing else runs in the producer process).
Its default worker forks a child per job; ``rq.worker.SimpleWorker`` is rq's own class
that runs jobs in the worker process, which is the fair setting for noop jobs.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from redis import Redis
from rq import Queue

from adapters.base import QUEUE, Adapter, Data, bin_path
from adapters.probe import hit

CHUNK = 1000


def noop(data: Any) -> None:
    hit(data)


class _Producer:
    def __init__(self, client: Redis) -> None:
        self.client = client
        self.queue = Queue(QUEUE, connection=client)

    async def add(self, data: Data) -> None:
        self.queue.enqueue(noop, data)

    async def add_bulk(self, items: list[Data]) -> None:
        for start in range(0, len(items), CHUNK):
            chunk = items[start : start + CHUNK]
            self.queue.enqueue_many([Queue.prepare_data(noop, (item,)) for item in chunk])

    async def queued(self) -> int:
        return self.queue.count

    async def close(self) -> None:
        self.client.close()


async def open_producer(url: str) -> _Producer:
    return _Producer(Redis.from_url(url))


def worker_command(url: str) -> list[str]:
    return [
        bin_path("rq"), "worker", "--url", url, "--worker-class", "rq.worker.SimpleWorker",
        "--quiet", QUEUE,
    ]  # fmt: skip


ADAPTER = Adapter(
    name="rq",
    version=version("rq"),
    open_producer=open_producer,
    worker_command=worker_command,
    bulk_label=f"Queue.enqueue_many (one pipeline per {CHUNK:,} jobs)",
    worker_label="rq worker -w rq.worker.SimpleWorker (no fork per job, one job at a time)",
)
