"""Conveyor: ``Queue.add`` / ``Queue.add_bulk``; worker: ``conveyor worker`` (asyncio)."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import conveyor
from adapters.base import JOB, QUEUE, Adapter, Data, bin_path, concurrency
from adapters.probe import hit

CONCURRENCY = concurrency(200)


async def noop(ctx: conveyor.JobContext, data: Any) -> None:
    hit(data)


HANDLERS = {JOB: noop}


class _Producer:
    def __init__(self, conn: conveyor.Connection) -> None:
        self.conn = conn
        self.queue = conveyor.Queue(QUEUE, conn)

    async def add(self, data: Data) -> None:
        await self.queue.add(JOB, data)

    async def add_bulk(self, items: list[Data]) -> None:
        await self.queue.add_bulk([(JOB, item) for item in items])

    async def queued(self) -> int:
        return (await self.queue.counts())["waiting"]

    async def close(self) -> None:
        await self.conn.close()


async def open_producer(url: str) -> _Producer:
    return _Producer(await conveyor.connect(url))


def worker_command(url: str) -> list[str]:
    return [
        bin_path("conveyor"), "worker", "--app", "adapters.conveyor_:HANDLERS",
        "-q", QUEUE, "--url", url, "-c", str(CONCURRENCY),
    ]  # fmt: skip


ADAPTER = Adapter(
    name="conveyor",
    version=version("conveyor"),
    open_producer=open_producer,
    worker_command=worker_command,
    bulk_label="Queue.add_bulk (one Lua call per 1,000 jobs)",
    worker_label=f"conveyor worker -c {CONCURRENCY}",
)
