"""The producer and operator API of a queue, against a real Redis."""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

import pytest
import redis

import conveyor
from conveyor import DeadFilter, JobOptions, Queue, Retention, SyncQueue
from tests.conftest import wait_for_state


async def test_add_returns_id_and_job_reads_back(queue: Queue) -> None:
    meta = {"tenant": "acme", "correlation_id": "req-1"}
    added = await queue.add("send", {"to": "a@example.com"}, JobOptions(priority=7, meta=meta))
    assert added.created
    job = await queue.get_job(added.id)
    assert job.name == "send" and job.data == {"to": "a@example.com"}
    assert job.state == "waiting" and job.priority == 7
    assert job.meta == meta
    assert job.options["attempts"] == 3  # the built-in default
    assert abs(job.created_at - time.time()) < 5


async def test_custom_id_is_idempotent(queue: Queue) -> None:
    first = await queue.add("send", {"v": 1}, JobOptions(job_id="order-42"))
    second = await queue.add("send", {"v": 2}, JobOptions(job_id="order-42"))
    assert first == conveyor.Enqueued("order-42", True)
    assert second == conveyor.Enqueued("order-42", False)
    assert (await queue.get_job("order-42")).data == {"v": 1}
    assert (await queue.counts())["waiting"] == 1


async def test_queue_defaults_apply_and_job_options_win(
    conn: conveyor.Connection, queue_name: str
) -> None:
    queue = Queue(
        queue_name, conn, defaults=JobOptions(attempts=7, timeout=9, meta={"source": "api"})
    )
    a = await queue.get_job((await queue.add("x")).id)
    b = await queue.get_job(
        (await queue.add("x", None, JobOptions(attempts=2, meta={"user": "u"}))).id
    )
    assert a.options["attempts"] == 7 and a.options["timeout"] == 9
    assert b.options["attempts"] == 2 and b.meta == {"source": "api", "user": "u"}


async def test_bulk_add_in_chunks(queue: Queue) -> None:
    jobs = await queue.add_bulk([("n", i) for i in range(2500)], chunk_size=1000)
    assert len(jobs) == 2500 and all(j.created for j in jobs)
    assert (await queue.counts())["waiting"] == 2500
    first = await queue.list_jobs("waiting", limit=3)
    assert [j.data for j in first] == [0, 1, 2]


async def test_missing_job_raises_job_not_found(queue: Queue) -> None:
    with pytest.raises(conveyor.JobNotFound):
        await queue.get_job("nope")
    with pytest.raises(conveyor.JobNotFound):
        await queue.cancel("nope")


async def test_cancel_waiting_and_delayed(queue: Queue) -> None:
    waiting = await queue.add("w")
    delayed = await queue.add("d", None, JobOptions(delay=60))
    assert await queue.cancel(waiting.id) == "cancelled"
    assert await queue.cancel(delayed.id) == "cancelled"
    counts = await queue.counts()
    assert counts["cancelled"] == 2 and counts["waiting"] == 0 and counts["delayed"] == 0
    with pytest.raises(conveyor.InvalidStateTransition):
        await queue.cancel(waiting.id)


async def test_promote_delayed(queue: Queue) -> None:
    job = await queue.add("later", None, JobOptions(delay=3600))
    await queue.promote(job.id)
    assert (await queue.get_job(job.id)).state == "waiting"
    with pytest.raises(conveyor.InvalidStateTransition):
        await queue.promote(job.id)
    await queue.add_bulk([("later", i, JobOptions(delay=3600)) for i in range(5)])
    assert await queue.promote_all() == 5


async def test_change_priority_moves_waiting_job(queue: Queue) -> None:
    a = await queue.add("a")
    b = await queue.add("b")
    await queue.change_priority(b.id, 100)
    assert await queue.list_ids("waiting") == [b.id, a.id]
    with pytest.raises(conveyor.InvalidJobOptions):
        await queue.change_priority(a.id, 5000)


async def test_remove_job(queue: Queue) -> None:
    job = await queue.add("x")
    await queue.remove(job.id)
    with pytest.raises(conveyor.JobNotFound):
        await queue.get_job(job.id)
    assert (await queue.counts())["waiting"] == 0


async def _kill_jobs(queue: Queue, start_worker: Any, items: list[tuple[str, Any]]) -> list[str]:
    async def boom(ctx: conveyor.JobContext, data: Any) -> None:
        raise (ValueError if data == "value" else KeyError)(f"failure {data}")

    added = await queue.add_bulk([(n, d, JobOptions(attempts=1)) for n, d in items])
    async with start_worker({"a": boom, "b": boom}):
        for job in added:
            await wait_for_state(queue, job.id, "dead")
    return [j.id for j in added]


async def test_dead_letters_requeue_by_filter_and_purge(queue: Queue, start_worker: Any) -> None:
    ids = await _kill_jobs(queue, start_worker, [("a", "value"), ("a", "key"), ("b", "value")])
    dead = await queue.dead_letters()
    assert {j.id for j in dead} == set(ids)
    assert all(j.error and j.error["type"] in ("ValueError", "KeyError") for j in dead)
    assert await queue.requeue_dead(DeadFilter(name="a", error_type="ValueError")) == 1
    assert (await queue.get_job(ids[0])).state == "waiting"
    assert (await queue.get_job(ids[0])).attempts_made == 0
    future = time.time() + 3600
    assert await queue.purge_dead(DeadFilter(since=future)) == 0
    assert await queue.purge_dead() == 2
    assert (await queue.counts())["dead"] == 0


async def test_retry_dead_job_with_edited_data(queue: Queue, start_worker: Any) -> None:
    (job_id,) = await _kill_jobs(queue, start_worker, [("a", "value")])
    await queue.retry(job_id, data="fixed")
    job = await queue.get_job(job_id)
    assert job.state == "waiting" and job.data == "fixed" and job.name == "a"


async def test_retention_trims_completed_by_count(
    conn: conveyor.Connection, queue_name: str
) -> None:
    queue = Queue(queue_name, conn)

    async def ok(ctx: conveyor.JobContext, data: Any) -> int:
        return int(data)

    jobs = await queue.add_bulk([("ok", i) for i in range(300)])
    worker = conveyor.Worker(conn, [queue_name], {"ok": ok}, keep_completed=Retention(50, None))
    task = asyncio.create_task(worker.run())
    await wait_for_state(queue, jobs[-1].id, "completed")
    worker.stop()  # FIFO: every earlier job was fetched; shutdown lets them finish
    await task
    assert worker.stats.completed == 300
    assert (await queue.counts())["completed"] == 50
    # Trimmed jobs are gone entirely: no field of theirs is left behind.
    with pytest.raises(conveyor.JobNotFound):
        await queue.get_job(jobs[0].id)
    fields = await conn.client.hlen(queue.keys.job_field("spec"))
    assert fields == 50


async def test_event_stream_follows_transitions(queue: Queue, start_worker: Any) -> None:
    async def ok(ctx: conveyor.JobContext, data: Any) -> None:
        return None

    job = await queue.add("ok")
    async with start_worker({"ok": ok}):
        await wait_for_state(queue, job.id, "completed")
    seen = []
    async for event in queue.events(after="0", block_ms=100):
        if event.job_id == job.id:
            seen.append(event.event)
        if event.event == "completed":
            break
    assert seen == ["waiting", "active", "completed"]


def test_sync_queue_adds_without_event_loop(
    redis_server: conveyor.EmbeddedRedis, queue_name: str
) -> None:
    queue = SyncQueue(queue_name, url=redis_server.url)
    try:
        added = queue.add("send", {"x": 1})
        again = queue.add("send", {"x": 2}, JobOptions(job_id=added.id))
        bulk = queue.add_bulk([("send", i) for i in range(10)])
        assert again.created is False and len(bulk) == 10
        assert queue.get_job(added.id).data == {"x": 1}
        assert queue.counts()["waiting"] == 11
    finally:
        queue.close()


async def test_bulk_add_over_several_pipelines_keeps_fifo_order(queue: Queue) -> None:
    # chunk_size 7, three chunks per pipeline, two pipelines in flight: 200 jobs take ten.
    added = await queue.add_bulk([("n", i) for i in range(200)], chunk_size=7)
    again = await queue.add_bulk([("n", 0, JobOptions(job_id=added[5].id))], chunk_size=7)
    assert [e.created for e in added] == [True] * 200 and again[0].created is False
    assert await queue.list_ids("waiting", limit=500) == [e.id for e in added]


def test_sync_bulk_add_over_several_pipelines_keeps_fifo_order(
    redis_server: conveyor.EmbeddedRedis, queue_name: str
) -> None:
    queue = SyncQueue(queue_name, url=redis_server.url)
    try:
        added = queue.add_bulk([("n", i) for i in range(150)], chunk_size=7)
        assert queue.connection.client.zrange(queue.keys.waiting, 0, -1) == [e.id for e in added]
    finally:
        queue.close()


async def test_clean_deletes_only_old_finished_jobs(queue: Queue) -> None:
    old = await queue.add("x", None, JobOptions(job_id="old"))
    new = await queue.add("x", None, JobOptions(job_id="new"))
    waiting = await queue.add("x", None, JobOptions(job_id="waiting"))
    for job_id in (old.id, new.id):
        await queue.cancel(job_id)
    hour_ago = int((time.time() - 3600) * 1000)
    await conn_zadd(queue, "cancelled", {old.id: hour_ago})
    assert await queue.clean("cancelled", older_than=60) == 1
    assert await queue.list_ids("cancelled") == [new.id]
    assert (await queue.get_job(waiting.id)).state == "waiting"
    with pytest.raises(conveyor.InvalidJobOptions) as err:
        await queue.clean("waiting", older_than=0)
    assert err.value.field == "state"
    with pytest.raises(conveyor.InvalidJobOptions):
        await queue.clean("dead", older_than=-1)


async def conn_zadd(queue: Queue, state: str, members: dict[str, int]) -> None:
    await queue.connection.client.zadd(queue.keys.state_set(state), members)


async def test_recent_events_newest_first_and_bounded(queue: Queue) -> None:
    for i in range(5):
        await queue.add("x", None, JobOptions(job_id=f"e{i}"))
    events = await queue.recent_events(count=3)
    assert [e.job_id for e in events] == ["e4", "e3", "e2"]
    assert all(e.event == "waiting" for e in events)
    assert await queue.recent_events(since=time.time() + 60) == []


async def test_a_bulk_add_refused_by_redis_raises_and_leaves_no_call_behind(
    own_server: conveyor.EmbeddedRedis, queue_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    conn = await conveyor.connect(own_server.url)
    try:
        queue = Queue(queue_name, conn)
        await queue.add("first")  # registered, library loaded: the refusal comes from add
        await conn.client.config_set("maxmemory", "1")  # then every write is refused
        with pytest.raises(redis.exceptions.ResponseError, match="maxmemory"):
            await queue.add_bulk([("n", i) for i in range(100)], chunk_size=7)
        await conn.client.config_set("maxmemory", "0")
        assert (await queue.counts())["waiting"] == 1  # nothing of the refused call
        gc.collect()  # a task whose failure nobody read would be reported now
        assert not [r for r in caplog.records if r.name == "asyncio"]
    finally:
        await conn.close()
