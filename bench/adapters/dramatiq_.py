"""dramatiq: ``actor.send``; no bulk API; worker: the ``dramatiq`` command (threads).

dramatiq is synchronous: the producer calls block (nothing else runs in the producer).
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from adapters.base import QUEUE, Adapter, Data, bin_path, concurrency, redis_url
from adapters.probe import hit

THREADS = concurrency(32)  # dramatiq defaults to 8; 32 drained faster here
CHUNK = 1000

broker = RedisBroker(url=redis_url())
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE)
def noop(data: Any) -> None:
    hit(data)


class _Producer:
    async def add(self, data: Data) -> None:
        noop.send(data)

    async def add_bulk(self, items: list[Data]) -> None:
        for start in range(0, len(items), CHUNK):
            dramatiq.group(noop.message(item) for item in items[start : start + CHUNK]).run()

    async def queued(self) -> int:
        return int(broker.client.llen(f"{broker.namespace}:{QUEUE}"))

    async def close(self) -> None:
        broker.close()


async def open_producer(url: str) -> _Producer:
    return _Producer()


def worker_command(url: str) -> list[str]:
    return [
        bin_path("dramatiq"), "adapters.dramatiq_", "--processes", "1",
        "--threads", str(THREADS), "--queues", QUEUE,
    ]  # fmt: skip


ADAPTER = Adapter(
    name="dramatiq",
    version=version("dramatiq"),
    open_producer=open_producer,
    worker_command=worker_command,
    bulk_label="no bulk API: group(...).run() sends each message with its own call",
    worker_label=f"dramatiq --processes 1 --threads {THREADS}",
)
