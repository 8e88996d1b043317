"""What a benchmark handler does: note that job ``i`` started, and when.

Every worker of every library calls :func:`hit` from its noop handler. The records go to
Redis from a background thread every few milliseconds, in one pipeline, so the handler
itself stays a noop (one list append) and the driver can count distinct jobs, duplicates,
the first and last handler start per process, and enqueue-to-start latencies.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from typing import Any

import redis

FLUSH_EVERY = 0.01
IDS = "bench:ids"  # set of distinct job numbers seen
RUNS = "bench:runs"  # every handler call, duplicates included
LATENCY = "bench:latency"  # list of "i:seconds" for latency runs
FIRST = "bench:first:"  # + pid: time of the first handler start in that process
LAST = "bench:last:"  # + pid: time of the latest handler start in that process
RUNS_OF = "bench:runs:"  # + pid: handler calls in that process
WARM = "bench:warm"  # warm-up jobs (negative numbers) seen, counted apart

# deque: append (handler) and popleft (flusher) are atomic, so nothing is lost in a swap
_pending: deque[tuple[int, float, float]] = deque()
_owner_pid = 0
_RECORD_LATENCY = os.environ.get("BENCH_RECORD_LATENCY") == "1"
_guard = threading.Lock()


def hit(data: Any) -> None:
    """Record one handler start for a job whose data is ``{"i": n, "t": enqueue_time}``."""
    now = time.time()
    if _owner_pid != os.getpid():
        _start_flusher()
    _pending.append((int(data["i"]), now, now - float(data["t"])))


def _start_flusher() -> None:
    # Started lazily in each process: forking workers copy the module but not the thread.
    global _owner_pid, _pending
    with _guard:
        if _owner_pid == os.getpid():
            return
        _owner_pid = os.getpid()
        _pending = deque()
        client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
        threading.Thread(target=_flush_forever, args=(client,), daemon=True).start()


def _flush_forever(client: redis.Redis) -> None:
    pid = os.getpid()
    while True:
        time.sleep(FLUSH_EVERY)
        batch = [_pending.popleft() for _ in range(len(_pending))]
        if batch:
            _flush(client, pid, batch)


def _flush(client: redis.Redis, pid: int, batch: list[tuple[int, float, float]]) -> None:
    pipe = client.pipeline(transaction=False)
    jobs = [record for record in batch if record[0] >= 0]
    if len(jobs) < len(batch):
        pipe.incrby(WARM, len(batch) - len(jobs))
    if jobs:
        pipe.sadd(IDS, *(i for i, _, _ in jobs))
        pipe.incrby(RUNS, len(jobs))
        pipe.incrby(f"{RUNS_OF}{pid}", len(jobs))
        pipe.set(f"{FIRST}{pid}", repr(min(started for _, started, _ in jobs)), nx=True)
        pipe.set(f"{LAST}{pid}", repr(max(started for _, started, _ in jobs)))
        if _RECORD_LATENCY:
            pipe.rpush(LATENCY, *(f"{i}:{latency!r}" for i, _, latency in jobs))
    pipe.execute()
