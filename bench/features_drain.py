"""Cost of dedup, idempotency, admission and flows next to plain jobs.

    .venv/bin/python bench/features_drain.py [--jobs 20000] [--runs 3] [--modes plain,...]

Modes: ``plain`` (add_bulk, then drain), ``guarded`` (every job carries a dedup key, an
idempotency key and the queue an admission limit: enqueue and drain), ``flow`` (one parent
per 100 children, every child completes through ``tree_complete``). Each run starts a fresh
embedded redis-server and times enqueue and a single worker process draining (one asyncio
loop, concurrency 200). Prints the median of ``--runs``. The ``plain`` mode only uses the
core API, so it also runs against older checkouts (PYTHONPATH=<checkout>/src).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from typing import Any

import conveyor
from conveyor import EmbeddedRedis, JobOptions, Middleware, Queue, Worker
from conveyor.config import Settings


async def noop(ctx: conveyor.JobContext, data: Any) -> None:
    return None


class _Done(Middleware):
    def __init__(self, total: int) -> None:
        self.left = total
        self.event = asyncio.Event()

    def job_finished(
        self, ctx: conveyor.JobContext, outcome: str, duration: float, error: BaseException | None
    ) -> None:
        self.left -= 1
        if self.left <= 0:
            self.event.set()


async def _enqueue(conn: conveyor.Connection, mode: str, jobs: int) -> tuple[list[str], int]:
    """Returns the queues to drain and the number of jobs that will finish."""
    if mode == "plain":
        await Queue("bench", conn).add_bulk([("noop", None) for _ in range(jobs)])
        return ["bench"], jobs
    if mode == "guarded":
        queue = Queue("bench", conn, admission=conveyor.Admission(max_waiting=10 * jobs))
        items = [
            ("noop", i, JobOptions(dedup=conveyor.Dedup(f"d{i}", 60), idempotency_key=f"i{i}"))
            for i in range(jobs)
        ]
        await queue.add_bulk(items)  # type: ignore[arg-type]
        return ["bench"], jobs
    flows = conveyor.Flows(conn)
    per_parent = 100
    for p in range(jobs // per_parent):
        children = [conveyor.FlowJob("noop", "bench-child") for _ in range(per_parent)]
        await flows.add(conveyor.FlowJob("noop", "bench", p, children=children))
    parents = jobs // per_parent
    return ["bench-child", "bench"], parents * per_parent + parents


async def run_once(mode: str, jobs: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(tmp, appendonly=False) as server:
        conn = await conveyor.connect(server.url, settings=Settings())
        try:
            start = time.perf_counter()
            queues, total = await _enqueue(conn, mode, jobs)
            enqueue_rate = total / (time.perf_counter() - start)
            done = _Done(total)
            worker = Worker(
                conn, queues, {"noop": noop}, concurrency=200, idle_block=0.05,
                middleware=[done],
            )  # fmt: skip
            task = asyncio.create_task(worker.run())
            start = time.perf_counter()
            await done.event.wait()
            drain_rate = total / (time.perf_counter() - start)
            worker.stop()
            await task
            return enqueue_rate, drain_rate
        finally:
            await conn.close()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", default="plain,guarded,flow")
    args = parser.parse_args(argv)
    modes = args.modes.split(",")
    runs: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
    for _ in range(args.runs):  # interleaved, so a busy moment hits every mode alike
        for mode in modes:
            runs[mode].append(asyncio.run(run_once(mode, args.jobs)))
    for mode, results in runs.items():
        enqueue = statistics.median(r[0] for r in results)
        drain = statistics.median(r[1] for r in results)
        shown = ", ".join(f"{r[1]:,.0f}" for r in results)
        print(f"{mode:>8}: enqueue {enqueue:,.0f} jobs/s, drain {drain:,.0f} jobs/s ({shown})")


if __name__ == "__main__":
    main(sys.argv[1:])
