"""Load test of the operations API: 200 concurrent list/get requests over 10,000 jobs.

    .venv/bin/python bench/api_load.py [--jobs 10000] [--concurrency 200] [--requests 20000]

Starts a private redis-server (``conveyor.EmbeddedRedis``, no persistence), enqueues the
jobs, runs ``conveyor server`` (one uvicorn process) against it, then drives it from this
process with ``--concurrency`` requests in flight: half list a page of 50 waiting jobs at a
random cursor, half get one random job by id. Prints latency percentiles and throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx  # only to wait for the server to start

import conveyor
from conveyor import EmbeddedRedis, Queue
from conveyor.embedded import free_port
from conveyor.server import KeyStore

QUEUE = "load"


async def seed(url: str, jobs: int) -> tuple[list[str], str]:
    conn = await conveyor.connect(url)
    try:
        queue = Queue(QUEUE, conn)
        items = [("send", {"to": f"user{i}@example.com", "n": i}) for i in range(jobs)]
        added = await queue.add_bulk(items)
        _, token = await KeyStore(conn).create("bench", "operator")
        return [a.id for a in added], token
    finally:
        await conn.close()


def start_server(redis_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CONVEYOR_SERVER_RATE_LIMIT_PER_MINUTE": str(10**9)}
    command = [sys.executable, "-m", "conveyor", "server", "--port", str(port),
               "--url", redis_url]  # fmt: skip
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the server did not start")


class Connection:
    """A minimal keep-alive HTTP/1.1 client: httpx's pool costs more CPU than the server
    under test once it holds 200 connections, so it would measure itself."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        request = (
            f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {self.token}\r\n\r\n"
        )
        self.writer.write(request.encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def drive(port: int, token: str, ids: list[str], concurrency: int, total: int
                ) -> tuple[list[float], list[float], float, int]:  # fmt: skip
    lists: list[float] = []
    gets: list[float] = []
    errors = 0
    todo = iter(range(total))

    async def user() -> None:
        nonlocal errors
        connection = Connection(port, token)
        for i in todo:
            if i % 2:
                path = f"/api/v1/queues/{QUEUE}/jobs?limit=50&cursor={random.randrange(len(ids))}"
                bucket = lists
            else:
                path = f"/api/v1/queues/{QUEUE}/jobs/{random.choice(ids)}"
                bucket = gets
            started = time.perf_counter()
            try:
                status = await connection.get(path)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                errors += 1  # e.g. a keep-alive connection the server closed meanwhile
                connection.close()
                continue
            bucket.append(time.perf_counter() - started)
            errors += status != 200
        connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(user() for _ in range(concurrency)))
    return lists, gets, time.perf_counter() - started, errors


def percentiles(samples: list[float]) -> str:
    cuts = statistics.quantiles(samples, n=100)
    return " / ".join(f"{cuts[p - 1] * 1000:.1f}" for p in (50, 95, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--requests", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, \
            EmbeddedRedis(Path(tmp) / "redis", appendonly=False) as redis:  # fmt: skip
        ids, token = asyncio.run(seed(redis.url, args.jobs))
        port = free_port()
        server = start_server(redis.url, port)
        try:
            asyncio.run(drive(port, token, ids, 20, 500))  # warm-up
            lists, gets, elapsed, errors = asyncio.run(
                drive(port, token, ids, args.concurrency, args.requests)
            )
        finally:
            server.terminate()
            server.wait(20)
    total = len(lists) + len(gets)
    print(f"{args.jobs} jobs, {args.concurrency} concurrent, {total} requests, {errors} errors")
    print(f"throughput: {total / elapsed:.0f} req/s over {elapsed:.1f} s")
    print(f"list (50 jobs)  p50/p95/p99 ms: {percentiles(lists)}")
    print(f"get one job     p50/p95/p99 ms: {percentiles(gets)}")
    print(f"all             p50/p95/p99 ms: {percentiles(lists + gets)}")


if __name__ == "__main__":
    main()
