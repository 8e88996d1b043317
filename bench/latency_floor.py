"""The one-hop floor under W3: how soon a blocked client sees a value another process pushed.

    bench/.venv/bin/python bench/latency_floor.py [--jobs 400] [--rate 50]

One process LPUSHes ``time.time()`` at ``rate`` per second (redis-py asyncio, as every
Python library here); another, blocked in BLPOP, records how late each value arrives. No
queue logic at all: a job system that needs this one hop cannot beat these figures on the
same machine, and Conveyor needs the hop plus its scripts (enqueue, then the fetch that
runs as the worker's wait ends).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time

import redis.asyncio as aioredis

from conveyor import EmbeddedRedis

CONSUMER = """
import asyncio, sys, time
import redis.asyncio as aioredis

async def main():
    client = aioredis.Redis.from_url(sys.argv[1])
    late = []
    await client.rpush("floor:ready", 1)
    while True:
        _, value = await client.blpop(["floor:list"], 0)
        now = time.time()
        if value == b"stop":
            break
        late.append(now - float(value))
    await client.rpush("floor:late", *[repr(x) for x in late])
    await client.aclose()

asyncio.run(main())
"""


def quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--rate", type=float, default=50.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(tmp, appendonly=False) as server:
        consumer = await asyncio.create_subprocess_exec(sys.executable, "-c", CONSUMER, server.url)
        client = aioredis.Redis.from_url(server.url)
        try:
            await client.blpop(["floor:ready"], 30)
            start = time.monotonic()
            for i in range(args.jobs):
                await asyncio.sleep(max(0.0, start + i / args.rate - time.monotonic()))
                await client.lpush("floor:list", repr(time.time()))
            await client.lpush("floor:list", "stop")
            await asyncio.wait_for(consumer.wait(), 30)
            late = sorted(float(x) * 1000 for x in await client.lrange("floor:late", 0, -1))
        finally:
            if consumer.returncode is None:
                consumer.kill()
            await client.aclose()
    print(
        f"LPUSH -> BLPOP wake-up, {len(late)} values at {args.rate:g}/s: "
        f"p50 {quantile(late, 0.5):.2f} ms, p99 {quantile(late, 0.99):.2f} ms"
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
