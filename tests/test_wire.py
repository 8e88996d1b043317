"""The lean script-call client (conveyor.wire) against real servers it may stop and restart."""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from redis.exceptions import DataError, NoScriptError, ResponseError

from conveyor import EmbeddedRedis
from conveyor.wire import Endpoint, Wire, request


@pytest.fixture
async def wire(redis_server: EmbeddedRedis) -> AsyncIterator[Wire]:
    wire = Wire(Endpoint(port=redis_server.port))
    yield wire
    await wire.close()


def cmd(*args: object) -> bytes:
    return request(args)


async def test_concurrent_callers_each_get_their_own_reply(wire: Wire) -> None:
    replies = await asyncio.gather(*(wire.call(cmd("ECHO", f"n{i}")) for i in range(300)))
    assert replies == [[f"n{i}"] for i in range(300)]


async def test_pipelined_commands_come_back_together_in_order(wire: Wire) -> None:
    payload = (
        cmd("DEL", "wire:list")
        + cmd("RPUSH", "wire:list", "a", "b")
        + cmd("LRANGE", "wire:list", 0, -1)
    )
    assert await wire.call(payload, 3) == [0, 2, ["a", "b"]]


async def test_error_replies_are_typed_objects_the_caller_inspects(wire: Wire) -> None:
    (missing,) = await wire.call(cmd("EVALSHA", "0" * 40, 0))
    assert isinstance(missing, NoScriptError)
    ok, wrong = await wire.call(cmd("SET", "wire:s", "x") + cmd("LPUSH", "wire:s", "y"), 2)
    assert ok == "OK"
    assert isinstance(wrong, ResponseError) and "WRONGTYPE" in str(wrong)


async def test_values_redis_py_refuses_are_refused_before_sending(wire: Wire) -> None:
    with pytest.raises(DataError):
        request(("SET", "k", None))
    with pytest.raises(DataError):
        request(("SET", "k", True))
    assert request(("SET", "k", memoryview(b"v"))) == cmd("SET", "k", b"v")


async def test_a_cancelled_caller_does_not_shift_the_replies_of_the_next(wire: Wire) -> None:
    await wire.call(cmd("PING"))  # connected
    gone = asyncio.create_task(wire.call(cmd("ECHO", "for the cancelled caller")))
    await asyncio.sleep(0)  # sent, not yet answered
    gone.cancel()
    assert await wire.call(cmd("ECHO", "mine")) == ["mine"]
    assert gone.cancelled()


async def test_a_blocking_call_does_not_hold_up_the_shared_connection(wire: Wire) -> None:
    await wire.call(cmd("DEL", "wire:blocked"))
    waiting = asyncio.create_task(wire.blocking(cmd("BLPOP", "wire:blocked", 5), 1, block=5))
    await asyncio.sleep(0.05)
    assert await wire.call(cmd("LPUSH", "wire:blocked", "v")) == [1]
    assert await asyncio.wait_for(waiting, 5) == [["wire:blocked", "v"]]


async def test_a_paused_server_times_out_and_the_next_call_reconnects(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path, appendonly=False) as server:
        wire = Wire(Endpoint(port=server.port), timeout=0.3, retries=0)
        await wire.call(cmd("PING"))
        server.pause()
        try:
            began = time.monotonic()
            with pytest.raises(redis.TimeoutError, match=r"did not answer within 0\.3 s"):
                await wire.call(cmd("PING"))
            assert time.monotonic() - began < 2.0
        finally:
            server.resume()
        assert await wire.call(cmd("PING")) == ["PONG"]
        await wire.close()


async def test_calls_survive_a_server_restart_by_retrying(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as server:
        wire = Wire(Endpoint(port=server.port), retries=8, backoff=lambda failures: 0.1)
        await wire.call(cmd("SET", "wire:kept", "1"))
        server.restart(hard=True)
        assert await wire.call(cmd("INCR", "wire:kept")) in ([2], [1])  # AOF fsync: ≤ 1 s lost
        await wire.close()


async def test_an_unreachable_server_is_a_connection_error_after_the_retries() -> None:
    wire = Wire(Endpoint(port=1), retries=2)
    with pytest.raises(redis.ConnectionError, match=r"cannot connect to Redis at localhost:1\b"):
        await wire.call(cmd("PING"))


async def test_it_follows_the_redis_py_client_it_matches(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path, appendonly=False, password="s3cret") as server:
        client = aioredis.Redis.from_url(f"redis://:s3cret@127.0.0.1:{server.port}/3")
        wire = Wire.matching(client)
        assert (wire.endpoint.password, wire.endpoint.db) == ("s3cret", 3)
        await wire.call(cmd("SET", "wire:db", "three"))
        assert await client.get("wire:db") == b"three"  # same database
        await wire.close()
        await client.aclose()


async def test_a_wrong_password_fails_at_once_with_an_authentication_error(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path, appendonly=False, password="s3cret") as server:
        wire = Wire(Endpoint(port=server.port, password="wrong"), retries=5, backoff=lambda f: 1.0)
        began = time.monotonic()
        with pytest.raises(redis.AuthenticationError):
            await wire.call(cmd("PING"))
        assert time.monotonic() - began < 1.0  # not retried


async def test_then_sees_the_replies_before_the_caller_resumes(wire: Wire) -> None:
    seen: list[list[object]] = []
    got = await wire.blocking(cmd("ECHO", "x"), 1, block=1, then=seen.append)
    assert seen == [["x"]] and got == ["x"]

    def refuse(replies: list[object]) -> None:
        raise ValueError("not these")

    with pytest.raises(ValueError, match="not these"):  # raised where the caller awaits
        await wire.blocking(cmd("ECHO", "y"), 1, block=1, then=refuse)
    assert await wire.call(cmd("ECHO", "z")) == ["z"]  # the connection is still in step


async def test_closing_fails_a_blocking_call_in_flight(wire: Wire) -> None:
    waiting = asyncio.create_task(wire.blocking(cmd("BLPOP", "wire:never", 5), 1, block=5))
    await asyncio.sleep(0.05)
    await wire.close()
    with pytest.raises(redis.ConnectionError, match="closed"):
        await asyncio.wait_for(waiting, 2)


async def test_tcp_connections_keep_alive(wire: Wire) -> None:
    await wire.call(cmd("PING"))
    assert wire._shared is not None and wire._shared._transport is not None
    sock = wire._shared._transport.get_extra_info("socket")
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1


def _child_pings(wire: Wire, out: Any) -> None:
    out.put(asyncio.run(wire.call(cmd("ECHO", "child"))))


async def test_a_forked_child_opens_its_own_connection(wire: Wire) -> None:
    await wire.call(cmd("PING"))
    parent_connection = wire._shared
    fork = multiprocessing.get_context("fork")
    out = fork.Queue()
    child = fork.Process(target=_child_pings, args=(wire, out))
    child.start()
    assert await asyncio.to_thread(out.get, True, 10) == ["child"]
    await asyncio.to_thread(child.join, 10)
    assert child.exitcode == 0
    assert wire._shared is parent_connection  # the parent's is untouched, still in step
    assert await wire.call(cmd("ECHO", "parent")) == ["parent"]


async def test_a_reply_that_is_not_utf8_is_a_clear_error_and_the_next_call_works(
    redis_server: EmbeddedRedis,
) -> None:
    wire = Wire(Endpoint(port=redis_server.port), retries=1)
    await wire.call(request(("SET", "wire:binary", b"\xff\xfe")))
    with pytest.raises(redis.ConnectionError, match="cannot be read"):
        await wire.call(cmd("GET", "wire:binary"))
    assert await wire.call(cmd("ECHO", "fine")) == ["fine"]
    await wire.close()
