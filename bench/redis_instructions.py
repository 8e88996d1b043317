"""Redis's side of a drain in instructions, not seconds: repeatable on a noisy machine.

    .venv/bin/python bench/redis_instructions.py [--jobs 20000] [--runs 2]
    PYTHONPATH=/path/to/other/checkout/src .venv/bin/python bench/redis_instructions.py

Starts a private redis-server under ``valgrind --tool=callgrind`` (no AOF, no RDB), then
per run: flushes it, enqueues ``--jobs`` noop jobs, zeroes the counters, drains the jobs
with one in-process worker (concurrency 200) and prints the instructions redis-server ran
per job. Callgrind counts instructions, so the figure moves by well under 1 % between runs
whatever else the machine does, where CPU seconds on this VM move by tens of percent: it
is the measure for A/B changes to the Lua scripts (run it once per checkout, as above).
The scripts' cost only: the worker's own CPU is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import redis
from observability_overhead import noop_until

import conveyor
from conveyor import Queue, Worker
from conveyor.config import Settings
from conveyor.embedded import free_port


def start_server(port: int, out: Path) -> subprocess.Popen[bytes]:
    command = [
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
        shutil.which("redis-server") or "redis-server",
        "--port", str(port), "--save", "", "--appendonly", "no",
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def connect(url: str, server: subprocess.Popen[bytes]) -> conveyor.Connection:
    deadline = time.monotonic() + 60  # redis-server starts slowly under valgrind
    while (conn := await answering(url)) is None:
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"redis-server under valgrind did not answer at {url}")
        await asyncio.sleep(0.5)
    return conn


async def answering(url: str) -> conveyor.Connection | None:
    """A connection to ``url`` if the server answers a PING, else None."""
    try:
        conn = await conveyor.connect(url, settings=Settings())
    except conveyor.RedisUnavailable:
        return None
    try:
        await conn.client.ping()
        return conn
    except (conveyor.RedisUnavailable, redis.exceptions.ConnectionError):
        await conn.close()
        return None


def callgrind(pid: int, action: str) -> None:
    subprocess.run(["callgrind_control", action, str(pid)], check=True, capture_output=True)


def dump_instructions(pid: int, folder: Path) -> int:
    """Have callgrind write its counts since the last zeroing; their total."""
    before = set(folder.glob("callgrind.out*"))
    callgrind(pid, "-d")
    (dump,) = set(folder.glob("callgrind.out*")) - before
    for line in dump.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"{dump} has no totals line")


async def drain(conn: conveyor.Connection, jobs: int) -> None:
    noop, done = noop_until(jobs)
    worker = Worker(conn, ["bench"], {"noop": noop}, concurrency=200, idle_block=0.05)
    task = asyncio.create_task(worker.run())
    await done.wait()
    worker.stop()
    await task


async def measure(jobs: int, runs: int) -> list[float]:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        server = start_server(port, out)
        try:
            conn = await connect(f"redis://127.0.0.1:{port}/0", server)
            per_job = []
            for _ in range(runs):
                await conn.client.flushall()
                await Queue("bench", conn).add_bulk([("noop", None)] * jobs)
                callgrind(server.pid, "-z")
                await drain(conn, jobs)
                per_job.append(dump_instructions(server.pid, Path(tmp)) / jobs)
            await conn.close()
            return per_job
        finally:
            server.terminate()
            server.wait()


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("valgrind (with callgrind_control) is needed: apt-get install valgrind")
    for n, per_job in enumerate(asyncio.run(measure(args.jobs, args.runs)), 1):
        print(f"run {n}: redis-server ran {per_job:,.0f} instructions a job")


if __name__ == "__main__":
    main(sys.argv[1:])
