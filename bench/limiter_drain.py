"""Rate limiter overhead: drain noop jobs plainly, then with a per-key limiter on 1,000 keys.

    .venv/bin/python bench/limiter_drain.py [--jobs 20000] [--keys 1000] [--runs 3]

Each run starts a fresh embedded redis-server, enqueues the jobs, then times one worker
process (one asyncio loop) draining them. The keyed run gives every job a group (one of
``--keys``) and sets a per-group rate limit (``keyed``; with ``--mode all`` also a per-group
concurrency limit, ``keyed+conc``) that does not bind, so the figure is the cost of the
bookkeeping alone. Prints, per mode, the median of ``--runs`` of: the wall-clock drain rate;
the CPU time per job of the worker process and of redis-server, and the rate they allow
when each has a core to itself (stable on a shared, busy machine, unlike wall time); and
the Redis commands run per job, scripts' inner calls included.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
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


async def redis_cpu(conn: conveyor.Connection) -> float:
    info = await conn.client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


@dataclass
class Run:
    rate: float  # jobs/s, wall clock
    calls: float  # Redis commands per job
    worker_us: float  # CPU µs per job in the worker process
    redis_us: float  # CPU µs per job in redis-server

    @property
    def cpu_bound_rate(self) -> float:
        """Jobs/s if each process had a core to itself: the busier one sets the pace."""
        return 1e6 / max(self.worker_us, self.redis_us)


async def drain_once(jobs: int, keys: int, mode: str) -> Run:
    """Wall-clock rate, and the load-independent costs: Redis commands and CPU per job."""
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
            redis_start = await redis_cpu(conn)
            start, cpu = time.perf_counter(), time.process_time()
            await done.event.wait()
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
            redis_used = await redis_cpu(conn) - redis_start
            worker.stop()
            await task
            calls = await redis_calls(conn) / jobs
            return Run(jobs / elapsed, calls, cpu / jobs * 1e6, redis_used / jobs * 1e6)
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
    runs: dict[str, list[Run]] = {mode: [] for mode in modes}
    for _ in range(args.runs):  # interleaved, so a busy moment hits both modes alike
        for mode in modes:
            runs[mode].append(asyncio.run(drain_once(args.jobs, args.keys, mode)))
    wall = {mode: statistics.median(r.rate for r in done) for mode, done in runs.items()}
    cpu = {mode: statistics.median(r.cpu_bound_rate for r in done) for mode, done in runs.items()}
    for mode, done in runs.items():
        shown = ", ".join(f"{r.rate:,.0f}" for r in done)
        worker_us = statistics.median(r.worker_us for r in done)
        redis_us = statistics.median(r.redis_us for r in done)
        print(
            f"{mode:>10}: wall {wall[mode]:,.0f} jobs/s (runs: {shown}); CPU per job: worker "
            f"{worker_us:.0f} µs, redis {redis_us:.0f} µs -> {cpu[mode]:,.0f} jobs/s "
            f"CPU-bound; {done[0].calls:.1f} Redis commands per job"
        )
    for mode in modes[1:]:
        print(
            f"{mode} / plain: wall {wall[mode] / wall['plain']:.1%}, "
            f"CPU-bound {cpu[mode] / cpu['plain']:.1%}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
