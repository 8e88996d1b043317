"""The interface every library adapter implements."""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

QUEUE = "bench"
JOB = "noop"
Data = dict[str, Any]


class Producer(Protocol):
    async def add(self, data: Data) -> None:
        """Enqueue one job with the library's ordinary single-job call."""

    async def add_bulk(self, items: list[Data]) -> None:
        """Enqueue many jobs with the library's bulk API (or its closest substitute)."""

    async def queued(self) -> int:
        """Jobs waiting in the queue, as the library counts them."""

    async def close(self) -> None: ...


@dataclass(frozen=True)
class Adapter:
    name: str
    version: str
    open_producer: Callable[[str], Awaitable[Producer]]
    #: The library's normal worker for one process, as a command line.
    worker_command: Callable[[str], list[str]]
    bulk_label: str
    worker_label: str


def redis_url() -> str:
    """The URL worker processes are started with (the driver sets it)."""
    return os.environ["BENCH_REDIS_URL"]  # always set: never a default server


def concurrency(default: int) -> int:
    """Jobs one worker process runs at once: ``BENCH_CONCURRENCY`` (set by the driver) or
    the library's default chosen for this harness (see ``DEFAULT_CONCURRENCY`` in run.py)."""
    return int(os.environ.get("BENCH_CONCURRENCY") or default)


def bin_path(script: str) -> str:
    """A console script of the bench environment (next to this interpreter)."""
    return os.path.join(os.path.dirname(sys.executable), script)
