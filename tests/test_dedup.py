"""Deduplication modes and idempotency keys (``add_guarded.lua``), against a real Redis."""

from __future__ import annotations

import multiprocessing
from typing import Any

import pytest

import conveyor
from conveyor import Dedup, IdempotencyConflict, JobOptions, Queue, SyncQueue
from conveyor.errors import InvalidJobOptions


def dedup(key: str = "k", window: float = 60, mode: str = "keep_first", **kw: Any) -> JobOptions:
    return JobOptions(dedup=Dedup(key, window, mode, **kw))


async def test_keep_first_drops_duplicates_while_the_first_is_unfinished(queue: Queue) -> None:
    first = await queue.add("n", 1, dedup())
    second = await queue.add("n", 2, dedup())
    assert first.created and first.outcome == "created"
    assert second == conveyor.Enqueued(first.id, False, "duplicate")
    assert (await queue.counts())["waiting"] == 1
    assert (await queue.get_job(first.id)).data == 1
    ttl = await queue.connection.client.pttl(queue.keys.key("dedup:k"))
    assert 0 < ttl <= 60_000


async def test_keep_first_admits_a_new_job_once_the_first_finished(queue: Queue) -> None:
    first = await queue.add("n", 1, dedup())
    await queue.cancel(first.id)
    again = await queue.add("n", 2, dedup())
    assert again.created and again.id != first.id


async def test_throttle_allows_one_job_per_window_even_after_it_finished(queue: Queue) -> None:
    first = await queue.add("n", 1, dedup(mode="throttle", window=0.3))
    await queue.cancel(first.id)
    assert await queue.add("n", 2, dedup(mode="throttle", window=0.3)) == conveyor.Enqueued(
        first.id, False, "throttled"
    )
    # The window is a Redis TTL: when the key is gone the next job is admitted.
    await queue.connection.client.delete(queue.keys.key("dedup:k"))
    assert (await queue.add("n", 3, dedup(mode="throttle", window=0.3))).created


async def test_debounce_replaces_data_and_pushes_the_start_back(queue: Queue) -> None:
    first = await queue.add("n", {"v": 1}, JobOptions(delay=5, dedup=Dedup("k", 60, "debounce")))
    before = (await queue.get_job(first.id)).ready_at
    second = await queue.add("n", {"v": 2}, JobOptions(delay=30, dedup=Dedup("k", 60, "debounce")))
    assert second == conveyor.Enqueued(first.id, False, "debounced")
    job = await queue.get_job(first.id)
    assert job.data == {"v": 2} and job.state == "delayed"
    assert before is not None and job.ready_at is not None and job.ready_at > before + 20
    assert (await queue.counts())["delayed"] == 1


async def test_debounce_can_keep_the_data_and_only_push_back(queue: Queue) -> None:
    opts = Dedup("k", 60, "debounce", replace_data=False)
    first = await queue.add("n", 1, JobOptions(dedup=opts))
    await queue.add("n", 2, JobOptions(delay=10, dedup=opts))
    job = await queue.get_job(first.id)
    assert job.data == 1 and job.state == "delayed"


async def test_debounce_starts_a_new_job_once_the_standing_one_left_waiting(
    queue: Queue,
) -> None:
    first = await queue.add("n", 1, dedup(mode="debounce"))
    await queue.cancel(first.id)
    again = await queue.add("n", 2, dedup(mode="debounce"))
    assert again.created and again.id != first.id


async def test_idempotency_key_replays_and_conflicts(queue: Queue) -> None:
    opts = JobOptions(idempotency_key="req-1", idempotency_ttl=100)
    first = await queue.add("charge", {"amount": 5, "cur": "EUR"}, opts)
    # Same data in another key order is the same request.
    replay = await queue.add("charge", {"cur": "EUR", "amount": 5}, opts)
    assert replay == conveyor.Enqueued(first.id, False, "idempotent")
    before = await queue.counts()
    with pytest.raises(IdempotencyConflict) as caught:
        await queue.add("charge", {"amount": 6, "cur": "EUR"}, opts)
    assert caught.value.field == "idempotency_key" and first.id in str(caught.value)
    with pytest.raises(IdempotencyConflict):
        await queue.add("refund", {"amount": 5, "cur": "EUR"}, opts)
    assert await queue.counts() == before
    ttl = await queue.connection.client.pttl(queue.keys.key("idem:req-1"))
    assert 0 < ttl <= 100_000


async def test_a_bulk_add_with_a_conflict_writes_nothing(queue: Queue) -> None:
    await queue.add("n", 1, JobOptions(idempotency_key="a"))
    before = await queue.counts()
    with pytest.raises(IdempotencyConflict):
        await queue.add_bulk(
            [("n", 9, JobOptions(idempotency_key="b")), ("n", 2, JobOptions(idempotency_key="a"))]
        )
    assert await queue.counts() == before
    assert not await queue.connection.client.exists(queue.keys.key("idem:b"))


async def test_a_bulk_add_reports_each_outcome(queue: Queue) -> None:
    standing = await queue.add("n", 0, dedup("x"))
    results = await queue.add_bulk(
        [("n", 1, dedup("x")), ("n", 2, dedup("y")), ("n", 3, JobOptions(job_id=standing.id))]
    )
    assert [r.outcome for r in results] == ["duplicate", "created", "exists"]
    assert results[0].id == standing.id


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Dedup("", 1), "dedup.key"),
        (lambda: Dedup("k", 0), "dedup.window"),
        (lambda: Dedup("k", -1), "dedup.window"),
        (lambda: Dedup("k", float("inf")), "dedup.window"),
        (lambda: Dedup("k", 1, "sometimes"), "dedup.mode"),
        (lambda: JobOptions(idempotency_key=""), "idempotency_key"),
        (lambda: JobOptions(idempotency_key="k", idempotency_ttl=0), "idempotency_ttl"),
        (lambda: JobOptions(dedup="k"), "dedup"),  # type: ignore[arg-type]
    ],
)
def test_bad_dedup_options_are_typed_errors_naming_the_field(make: Any, field: str) -> None:
    with pytest.raises(InvalidJobOptions) as caught:
        make()
    assert caught.value.field == field


async def test_the_same_key_twice_in_one_bulk_add_is_refused(queue: Queue) -> None:
    with pytest.raises(InvalidJobOptions) as caught:
        await queue.add_bulk([("n", 1, dedup("x")), ("n", 2, dedup("x"))])
    assert caught.value.field == "jobs[1].dedup.key"
    assert sum((await queue.counts()).values()) == 0


# -- concurrent producers in separate processes -----------------------------------------


MODES = ("keep_first", "throttle", "debounce", "idempotent")


def _produce(url: str, queue: str, worker: int, barrier: Any, out: Any) -> None:
    """One producer process: for each mode, 25 enqueues racing the other processes."""
    for mode in MODES:
        q = SyncQueue(f"{queue}-{mode}", url=url)
        barrier.wait()
        for i in range(25):
            if mode == "idempotent":
                options = JobOptions(idempotency_key="same")
                data: Any = "payload"
            else:
                options = JobOptions(dedup=Dedup("same", 60, mode))
                data = {"worker": worker, "i": i}
            added = q.add("n", data, options)
            out.put((mode, added.id, added.created, added.outcome))
        q.close()


async def test_concurrent_producers_in_four_processes_create_one_job_per_key(
    redis_server: conveyor.EmbeddedRedis, queue_name: str, conn: conveyor.Connection
) -> None:
    # fork: each child opens its own connection and touches nothing else of the parent;
    # spawn would re-import the package in every child (ten seconds on a busy CI box).
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(4), ctx.Queue()
    procs = [
        ctx.Process(target=_produce, args=(redis_server.url, queue_name, w, barrier, out))
        for w in range(4)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in range(4 * 25 * len(MODES))]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    expected = {"keep_first": "duplicate", "throttle": "throttled", "debounce": "debounced",
                "idempotent": "idempotent"}  # fmt: skip
    for mode in MODES:
        mine = [r[1:] for r in results if r[0] == mode]
        created = [r for r in mine if r[1]]
        assert len(created) == 1, mode
        assert {r[0] for r in mine} == {created[0][0]}
        assert {r[2] for r in mine if not r[1]} == {expected[mode]}
        counts = await Queue(f"{queue_name}-{mode}", conn).counts()
        assert counts["waiting"] == 1 and sum(counts.values()) == 1
