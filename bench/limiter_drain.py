"""Rate limiter overhead: drain noop jobs plainly, then with a per-key limiter on 1,000 keys.

    .venv/bin/python bench/limiter_drain.py [--jobs 20000] [--keys 1000] [--runs 3]

Each run starts a fresh embedded redis-server, enqueues the jobs, then times one worker
process (one asyncio loop) draining them. The keyed run gives every job a group (one of
``--keys``) and sets a per-group rate limit (``keyed``; with ``--mode all`` also a per-group
concurrency limit, ``keyed+conc``) that does not bind, so the figure is the cost of the
bookkeeping alone. Prints the median of ``--runs`` for each mode.
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
    """Sets ``event`` once ``total`` jobs have finished."""

    def __init__(self, total: int) -> None:
        self.left = total
        self.event = asyncio.Event()

    def job_finished(
        self, ctx: conveyor.JobContext, outcome: str, duration: float, error: BaseException | None
    ) -> None:
        self.left -= 1
        if self.left <= 0:
            self.event.set()


async def _limit_keys(queue: Queue, mode: str) -> None:
    from conveyor.limiter import Limiter, Limits, Rate

    concurrency = 1_000 if mode == "keyed+conc" else None
    await Limiter(queue).set(Limits(group_rate=Rate(100_000, 1.0), group_concurrency=concurrency))


async def redis_calls(conn: conveyor.Connection) -> int:
    """Commands Redis ran, those inside scripts included (not the scripts themselves)."""
    stats = await conn.client.info("commandstats")
    skip = {"cmdstat_evalsha", "cmdstat_info", "cmdstat_config|resetstat"}
    return sum(int(entry["calls"]) for name, entry in stats.items() if name not in skip)


async def drain_once(jobs: int, keys: int, mode: str) -> tuple[float, float]:
    """Jobs per second, and Redis commands per job (load-independent)."""
    keyed = mode != "plain"
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(tmp, appendonly=False) as server:
        conn = await conveyor.connect(server.url, settings=Settings())
        try:
            queue = Queue("bench", conn)
            if keyed:
                await _limit_keys(queue, mode)
            items = [
                ("noop", None, JobOptions(group=f"k{i % keys}")) if keyed else ("noop", None)
                for i in range(jobs)
            ]
            await queue.add_bulk(items)  # type: ignore[arg-type]
            await conn.client.config_resetstat()
            done = _Done(jobs)
            worker = Worker(
                conn, ["bench"], {"noop": noop}, concurrency=200, idle_block=0.05,
                middleware=[done],
            )  # fmt: skip
            task = asyncio.create_task(worker.run())
            start = time.perf_counter()
            await done.event.wait()
            elapsed = time.perf_counter() - start
            worker.stop()
            await task
            return jobs / elapsed, await redis_calls(conn) / jobs
        finally:
            await conn.close()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--mode", choices=("both", "all", "plain", "keyed", "keyed+conc"), default="both"
    )
    args = parser.parse_args(argv)
    modes = {"both": ("plain", "keyed"), "all": ("plain", "keyed", "keyed+conc")}.get(
        args.mode, (args.mode,)
    )
    rates: dict[str, list[float]] = {mode: [] for mode in modes}
    calls: dict[str, float] = {}
    for _ in range(args.runs):  # interleaved, so a busy moment hits both modes alike
        for mode in modes:
            rate, calls[mode] = asyncio.run(drain_once(args.jobs, args.keys, mode))
            rates[mode].append(rate)
    medians = {mode: statistics.median(runs) for mode, runs in rates.items()}
    for mode, runs in rates.items():
        shown = ", ".join(f"{r:,.0f}" for r in runs)
        print(
            f"{mode:>10}: median {medians[mode]:,.0f} jobs/s  (runs: {shown}); "
            f"{calls[mode]:.1f} Redis commands per job"
        )
    for mode in modes[1:]:
        print(f"{mode} / plain = {medians[mode] / medians['plain']:.1%}")


if __name__ == "__main__":
    main(sys.argv[1:])
