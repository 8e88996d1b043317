"""Why two worker processes do not reach 1.7x one on two cores: where each job's CPU goes.

    .venv/bin/python bench/scaling.py [--jobs 60000] [--runs 5]

Each run starts a fresh embedded redis-server, enqueues ``--jobs`` noop jobs, then starts
one or two ``conveyor worker -c 200`` processes (the command W2 runs, without the bench
probe) and times the drain from the moment a tenth of the jobs are done (so process
start-up is outside the window; W2's own window is under a second at these rates, where a
process starting 0.1 s late already costs a tenth). One and two processes alternate.

Prints, per process count, the median of: the drain rate; redis-server's CPU per job and
the worker processes' CPU per job, both over the same window; and the rate the two cores
allow when every one of their cycles goes to a job: 2 / (worker + redis) CPU
per job. Two processes can at best reach that cap (three busy processes on two cores),
so when 1.7x the single process's rate is above the cap, no scheduling of the two can
reach 1.7x: only less CPU per job can, and less CPU per job also speeds up the single
process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import conveyor
from conveyor import EmbeddedRedis, Queue
from conveyor.config import Settings

APP = """
async def noop(ctx, data):
    return None

HANDLERS = {"noop": noop}
"""


@dataclass
class Run:
    procs: int
    rate: float  # jobs/s after the first tenth
    redis_us: float  # redis-server CPU per job
    worker_us: float  # all worker processes' CPU per job

    @property
    def cap(self) -> float:
        """Jobs/s if the two cores did nothing but this work."""
        return 2e6 / (self.redis_us + self.worker_us)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def redis_cpu(conn: conveyor.Connection) -> float:
    info = await conn.client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def spawn(command: list[str], env: dict[str, str], count: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL) for _ in range(count)]


def stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.wait()


async def drain(procs: int, jobs: int, app_dir: str) -> Run:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(tmp, appendonly=False) as server:
        conn = await conveyor.connect(server.url, settings=Settings())
        try:
            queue = Queue("bench", conn)
            await queue.add_bulk([("noop", None)] * jobs)
            path = os.pathsep.join(filter(None, [app_dir, os.environ.get("PYTHONPATH")]))
            env = dict(os.environ, PYTHONPATH=path)
            command = [
                os.path.join(os.path.dirname(sys.executable), "conveyor"), "worker",
                "--app", "scaling_app:HANDLERS", "-q", "bench", "--url", server.url,
                "-c", "200",
            ]  # fmt: skip
            workers = spawn(command, env, procs)
            try:
                window_start, done_at_start = None, 0
                redis_start, workers_start = 0.0, 0.0
                while True:
                    counts = await queue.counts()
                    done = jobs - counts["waiting"] - counts["active"]
                    if window_start is None and done >= jobs // 10:
                        window_start, done_at_start = time.perf_counter(), done
                        redis_start = await redis_cpu(conn)
                        workers_start = sum(cpu_seconds(w.pid) for w in workers)
                    if done >= jobs:
                        break
                    await asyncio.sleep(0.005)
                assert window_start is not None
                timed = jobs - done_at_start
                rate = timed / (time.perf_counter() - window_start)
                redis_used = await redis_cpu(conn) - redis_start
                worker_used = sum(cpu_seconds(w.pid) for w in workers) - workers_start
            finally:
                stop(workers)
            return Run(procs, rate, redis_used / timed * 1e6, worker_used / timed * 1e6)
        finally:
            await conn.close()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=60_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    runs: dict[int, list[Run]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as app_dir:
        Path(app_dir, "scaling_app.py").write_text(textwrap.dedent(APP))
        for _ in range(args.runs):
            for procs in (1, 2):
                run = asyncio.run(drain(procs, args.jobs, app_dir))
                runs[procs].append(run)
                print(
                    f"{procs} process(es): {run.rate:,.0f} jobs/s, CPU per job: redis "
                    f"{run.redis_us:.1f} µs, workers {run.worker_us:.1f} µs"
                )
    median = {
        procs: Run(
            procs,
            statistics.median(r.rate for r in done),
            statistics.median(r.redis_us for r in done),
            statistics.median(r.worker_us for r in done),
        )
        for procs, done in runs.items()
    }
    for procs, run in median.items():
        print(
            f"median {procs}: {run.rate:,.0f} jobs/s; redis {run.redis_us:.1f} µs, workers "
            f"{run.worker_us:.1f} µs a job -> two-core cap {run.cap:,.0f} jobs/s"
        )
    one, two = median[1], median[2]
    print(
        f"two / one: {two.rate / one.rate:.2f}x; two processes run at {two.rate / two.cap:.0%} "
        f"of their cap; 1.7x one = {1.7 * one.rate:,.0f} jobs/s = {1.7 * one.rate / two.cap:.0%} "
        "of it"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
