"""The faster request encoder writes exactly what redis-py would, and hands odd cases back."""

from __future__ import annotations

from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from redis.exceptions import DataError

import conveyor
from conveyor.packing import _FastPacking, fast_packing

CASES: list[tuple[Any, ...]] = [
    ("PING",),
    ("SET", "k", "v"),
    ("EVALSHA", "a" * 40, 2, "{q}:wait", "{q}:meta", 0, -17, 3.25, 1e-7, b"\x00\xff"),
    ("HSET", "h", "ключ", "значение 🚚", "", ""),
    ("SET", "big", "x" * 200_000),
    ("CONFIG GET", "maxmemory"),  # multi-word command name: redis-py's own path
    ("SET", "view", memoryview(b"bytes-like")),  # likewise
]


@pytest.mark.parametrize("module", [aioredis, redis], ids=["async", "sync"])
@pytest.mark.parametrize("args", CASES, ids=lambda args: str(args[0]))
def test_packs_the_same_bytes_as_redis_py(module: Any, args: tuple[Any, ...]) -> None:
    plain = module.Connection()
    fast = fast_packing(module.Connection)()
    assert b"".join(map(bytes, fast.pack_command(*args))) == b"".join(
        map(bytes, plain.pack_command(*args))
    )


@pytest.mark.parametrize("bad", [None, True, object()])
def test_values_redis_py_rejects_are_still_rejected(bad: Any) -> None:
    with pytest.raises(DataError):
        fast_packing(aioredis.Connection)().pack_command("SET", "k", bad)


def test_the_packed_class_is_still_the_class_it_extends() -> None:
    for cls in (aioredis.Connection, aioredis.SSLConnection, aioredis.UnixDomainSocketConnection):
        assert issubclass(fast_packing(cls), cls)
        assert fast_packing(cls) is fast_packing(cls)


async def test_values_round_trip_through_a_real_server(conn: conveyor.Connection) -> None:
    assert issubclass(conn.client.connection_pool.connection_class, _FastPacking)
    text = "ключ 🚚 " + "x" * 100_000
    await conn.client.hset("packing:h", mapping={"text": text, "n": 42, "f": 0.5})
    assert await conn.client.hgetall("packing:h") == {"text": text, "n": "42", "f": "0.5"}
    await conn.client.delete("packing:h")
