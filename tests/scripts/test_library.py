"""The scripts run as functions of one library: nothing of one call may reach the next."""

from __future__ import annotations

import conveyor
from conveyor import EmbeddedRedis, JobOptions, Limiter, Limits, Queue
from conveyor.config import Settings
from conveyor.keys import FLOW_STRUCTURES
from tests.scripts.conftest import Lua


async def test_calls_on_two_queues_interleaved_each_use_their_own_keys(
    conn: conveyor.Connection, queue_name: str
) -> None:
    a, b = Lua(conn, f"{queue_name}-a"), Lua(conn, f"{queue_name}-b")
    for i in range(3):
        assert await a.add(f"a{i}") == 1
        assert await b.add(f"b{i}") == 1
    assert await a.members("waiting") == ["a0", "a1", "a2"]
    assert await b.members("waiting") == ["b0", "b1", "b2"]
    assert (await a.fetch())[2] == "a0"
    assert (await b.fetch())[2] == "b0"
    assert await a.members("active") == ["a0"]
    assert await b.members("active") == ["b0"]


async def test_a_flow_controlled_queue_leaves_nothing_behind_for_a_plain_one(
    conn: conveyor.Connection, queue_name: str
) -> None:
    """The helpers cache a queue's limits and groups within a call; a call on a queue
    with limits and groups, then one on a plain queue, must not carry them over."""
    limited = Queue(f"{queue_name}-limited", conn)
    await Limiter(limited).set(Limits(concurrency=1, group_concurrency=1))
    plain = Lua(conn, f"{queue_name}-plain")
    for i in range(2):
        await limited.add("job", i, JobOptions(group="g"))
    limited_lua = Lua(conn, limited.name)
    for i in range(2):
        fetched = await limited_lua.fetch(2)  # the group is full after one: one job only
        assert len(fetched[2:]) == 5
        token = await plain.lease(f"p{i}")
        codes, _more = await limited_lua.complete(fetched[2], str(fetched[3]))
        assert codes == [1]
        await conn.client.delete(plain.keys.marker)
        assert (await plain.complete(f"p{i}", token))[0] == [1]
        assert not await conn.client.exists(plain.keys.marker)  # no concurrency limit: no wake
    flow_keys = [plain.keys.key(name) for name in FLOW_STRUCTURES]
    assert await conn.client.exists(*flow_keys) == 0
    assert await plain.members("completed") == ["p0", "p1"]


def test_the_sync_producer_loads_the_library_where_the_server_lacks_it(
    redis_server: EmbeddedRedis, settings: Settings, queue_name: str
) -> None:
    sync_conn = conveyor.connect_sync(redis_server.url, settings=settings)
    try:
        queue = conveyor.SyncQueue(queue_name, sync_conn)
        sync_conn.client.function_flush()
        assert queue.add("job", 1).created  # one call: FCALL, "not found", load, again
        sync_conn.client.function_flush()
        assert len(queue.add_bulk([("job", 2), ("job", 3)])) == 2  # the pipelined path too
        assert queue.counts()["waiting"] == 3
    finally:
        sync_conn.close()


async def test_the_async_producer_loads_the_library_where_the_server_lacks_it(
    conn: conveyor.Connection, queue_name: str
) -> None:
    queue = Queue(queue_name, conn)
    await conn.client.function_flush()
    assert (await queue.add("job", 1)).created
    await conn.client.function_flush()
    assert len(await queue.add_bulk([("job", 2), ("job", 3)])) == 2  # pipelined
    assert (await queue.counts())["waiting"] == 3
