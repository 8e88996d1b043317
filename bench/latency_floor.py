"""The one-hop floor under W3: how soon a blocked client sees a value another process pushed.

    bench/.venv/bin/python bench/latency_floor.py [--jobs 400] [--rate 50] [--raw]

One process LPUSHes ``time.time()`` at ``rate`` per second (redis-py asyncio, as every
Python library here); another, blocked in BLPOP, records how late each value arrives. No
queue logic at all: a job system that needs this one hop cannot beat these figures on the
same machine, and Conveyor needs the hop plus its scripts (enqueue, then the fetch that
runs as the worker's wait ends). ``--raw``: both sides write and read plain blocking
sockets instead, which leaves only the kernel, Redis and the process wake-ups.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import tempfile
import time
from collections.abc import Callable

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

RAW_CONSUMER = """
import socket, sys, time

def command(*args):
    out = b"*%d\\r\\n" % len(args)
    for arg in args:
        out += b"$%d\\r\\n%s\\r\\n" % (len(arg), arg)
    return out

host, port = sys.argv[1].removeprefix("redis://").split("/")[0].split(":")
s = socket.create_connection((host, int(port)))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
s.sendall(command(b"RPUSH", b"floor:ready", b"1")); s.recv(100)
late = []
while True:
    s.sendall(command(b"BLPOP", b"floor:list", b"0"))
    data = s.recv(1000)
    now = time.time()
    value = data.split(b"\\r\\n")[-2]
    if value == b"stop":
        break
    late.append(now - float(value))
for value in late:
    s.sendall(command(b"RPUSH", b"floor:late", repr(value).encode())); s.recv(100)
"""


def quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--raw", action="store_true", help="plain sockets on both sides")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(tmp, appendonly=False) as server:
        code = RAW_CONSUMER if args.raw else CONSUMER
        consumer = await asyncio.create_subprocess_exec(sys.executable, "-c", code, server.url)
        push = raw_pusher(server.port) if args.raw else None
        client = aioredis.Redis.from_url(server.url)
        try:
            await client.blpop(["floor:ready"], 30)
            start = time.monotonic()
            for i in range(args.jobs):
                await asyncio.sleep(max(0.0, start + i / args.rate - time.monotonic()))
                if push is not None:
                    push(repr(time.time()))
                else:
                    await client.lpush("floor:list", repr(time.time()))
            await client.lpush("floor:list", "stop")
            await asyncio.wait_for(consumer.wait(), 30)
            late = sorted(float(x) * 1000 for x in await client.lrange("floor:late", 0, -1))
        finally:
            if consumer.returncode is None:
                consumer.kill()
            await client.aclose()
    client_kind = "raw sockets" if args.raw else "redis-py asyncio"
    print(
        f"{client_kind}: LPUSH -> BLPOP wake-up, {len(late)} values at {args.rate:g}/s: "
        f"p50 {quantile(late, 0.5):.2f} ms, p99 {quantile(late, 0.99):.2f} ms"
    )


def raw_pusher(port: int) -> Callable[[str], None]:
    """LPUSH over a plain blocking socket: no client library, no event loop."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def push(value: str) -> None:
        data = value.encode()
        sock.sendall(b"*3\r\n$5\r\nLPUSH\r\n$10\r\nfloor:list\r\n$%d\r\n%s\r\n" % (len(data), data))
        sock.recv(100)

    return push


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
