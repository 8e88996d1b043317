"""Admission limits: QueueFull at enqueue, nothing written (``add_guarded.lua``)."""

from __future__ import annotations

from typing import Any

import pytest

import conveyor
from conveyor import Admission, JobOptions, Queue, QueueFull, SyncQueue
from conveyor.errors import ConfigError


def tenant(name: str, **kw: Any) -> JobOptions:
    return JobOptions(meta={"tenant": name}, **kw)


async def test_max_waiting_refuses_the_job_over_the_limit(
    conn: conveyor.Connection, queue_name: str
) -> None:
    queue = Queue(queue_name, conn, admission=Admission(max_waiting=3))
    await queue.add("n", 1)
    await queue.add("n", 2, JobOptions(delay=60))  # delayed jobs count as waiting too
    await queue.add("n", 3)
    events_before = await conn.client.xlen(queue.keys.events)
    with pytest.raises(QueueFull) as caught:
        await queue.add("n", 4)
    error = caught.value
    assert error.field == "max_waiting" and error.waiting == 3 and error.limit == 3
    assert "max_waiting" in str(error) and queue_name in str(error)
    assert await queue.counts() == {**await queue.counts(), "waiting": 2, "delayed": 1}
    assert await conn.client.xlen(queue.keys.events) == events_before


async def test_room_comes_back_when_a_job_leaves_waiting(
    conn: conveyor.Connection, queue_name: str
) -> None:
    queue = Queue(queue_name, conn, admission=Admission(max_waiting=1))
    first = await queue.add("n", 1)
    with pytest.raises(QueueFull):
        await queue.add("n", 2)
    await queue.cancel(first.id)
    assert (await queue.add("n", 3)).created


async def test_per_key_limit_holds_one_tenant_while_others_flow(
    conn: conveyor.Connection, queue_name: str
) -> None:
    queue = Queue(queue_name, conn, admission=Admission(max_waiting_per_key=2))
    a1 = await queue.add("n", 1, tenant("acme"))
    await queue.add("n", 2, tenant("acme"))
    with pytest.raises(QueueFull) as caught:
        await queue.add("n", 3, tenant("acme"))
    assert caught.value.field == "max_waiting_per_key" and caught.value.key == "acme"
    for i in range(5):
        await queue.add("n", i, tenant(f"other-{i}"))
    await queue.add("n", 0)  # no tenant: only the queue-wide limit applies
    # A finished job frees its place lazily, when the limit is next reached.
    await queue.cancel(a1.id)
    assert (await queue.add("n", 4, tenant("acme"))).created
    members = await conn.client.zrange(queue.keys.key("admit:tenant:acme"), 0, -1)
    assert a1.id not in members and len(members) == 2


async def test_a_bulk_add_over_the_limit_writes_nothing(
    conn: conveyor.Connection, queue_name: str
) -> None:
    queue = Queue(queue_name, conn, admission=Admission(max_waiting=5))
    await queue.add("n", 0)
    with pytest.raises(QueueFull):
        await queue.add_bulk([("n", i) for i in range(5)])
    assert (await queue.counts())["waiting"] == 1
    assert len(await queue.add_bulk([("n", i) for i in range(4)])) == 4


async def test_duplicates_do_not_use_up_room(conn: conveyor.Connection, queue_name: str) -> None:
    queue = Queue(queue_name, conn, admission=Admission(max_waiting=1))
    opts = JobOptions(dedup=conveyor.Dedup("k", 60))
    first = await queue.add("n", 1, opts)
    assert (await queue.add("n", 1, opts)).id == first.id  # not QueueFull: nothing new


def test_sync_producer_gets_the_same_error(
    redis_server: conveyor.EmbeddedRedis, queue_name: str
) -> None:
    queue = SyncQueue(queue_name, url=redis_server.url, admission=Admission(max_waiting=1))
    try:
        queue.add("n", 1)
        with pytest.raises(QueueFull):
            queue.add("n", 2)
        assert queue.counts()["waiting"] == 1
    finally:
        queue.close()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_waiting": 0}, "admission.max_waiting"),
        ({"max_waiting": -5}, "admission.max_waiting"),
        ({"max_waiting": 1.5}, "admission.max_waiting"),
        ({"max_waiting_per_key": 0}, "admission.max_waiting_per_key"),
        ({"key": ""}, "admission.key"),
    ],
)
def test_bad_limits_are_typed_errors_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Admission(**kwargs)
    assert caught.value.field == field


async def test_jobs_of_fairness_groups_count_as_waiting(
    conn: conveyor.Connection, queue_name: str
) -> None:
    queue = Queue(queue_name, conn, admission=Admission(max_waiting=2))
    await queue.add("n", 1, JobOptions(group="a"))
    await queue.add("n", 2, JobOptions(group="b"))
    with pytest.raises(QueueFull) as caught:
        await queue.add("n", 3)
    assert caught.value.waiting == 2
