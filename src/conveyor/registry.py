"""Read-only views of what is registered in Redis: the queues and the live workers.

Queues register themselves in ``cv:queues`` on their first write; workers publish a
heartbeat hash ``cv:worker:<id>`` (with a TTL) and their id in the ``cv:workers`` sorted set.
An id whose hash has expired belongs to a worker that died without unregistering.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from conveyor.connection import Connection
from conveyor.keys import GLOBAL_QUEUES, GLOBAL_WORKERS, worker_key


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One live worker, from its last heartbeat. Times are UNIX seconds."""

    id: str
    host: str
    pid: int
    queues: tuple[str, ...]
    concurrency: int
    running: int
    completed: int
    failed: int
    last_seen: float

    @property
    def heartbeat_age(self) -> float:
        return max(0.0, time.time() - self.last_seen)


async def queue_names(connection: Connection) -> list[str]:
    """Every queue that was ever written to, sorted by name."""
    names: set[str] = await connection.client.smembers(GLOBAL_QUEUES)
    return sorted(names)


def _worker(raw: dict[str, str]) -> WorkerInfo:
    return WorkerInfo(
        id=raw.get("id", ""),
        host=raw.get("host", ""),
        pid=int(raw.get("pid", 0)),
        queues=tuple(q for q in raw.get("queues", "").split(",") if q),
        concurrency=int(raw.get("concurrency", 0)),
        running=int(raw.get("running", 0)),
        completed=int(raw.get("completed", 0)),
        failed=int(raw.get("failed", 0)),
        last_seen=float(raw.get("last_seen", 0)),
    )


async def live_workers(connection: Connection, *, limit: int = 1000) -> list[WorkerInfo]:
    """Workers whose heartbeat has not expired, most recently seen first (at most ``limit``)."""
    client = connection.client
    ids: list[str] = await client.zrange(GLOBAL_WORKERS, 0, limit - 1, desc=True)
    if not ids:
        return []
    pipe = client.pipeline(transaction=False)
    for worker_id in ids:
        pipe.hgetall(worker_key(worker_id))
    hashes: list[dict[str, str]] = await pipe.execute()
    return [_worker(raw) for raw in hashes if raw]
