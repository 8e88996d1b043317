"""The cluster-wide /metrics text, read from Redis alone."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

import conveyor
from conveyor import JobContext, JobOptions, Queue, Worker
from conveyor.keys import worker_key
from conveyor.observability.cluster import EXPOSED_BOUNDS, FAMILIES, render_cluster_metrics
from conveyor.observability.history import BOUNDS, HistoryRecorder
from tests.conftest import running
from tests.observability.conftest import run_workload

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(conn: conveyor.Connection) -> Samples:
    text = (await render_cluster_metrics(conn)).decode()
    families = list(text_string_to_metric_families(text))  # also checks the format
    return {(s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples}


def value(samples: Samples, metric: str, **labels: str) -> float:
    return samples[(metric, frozenset(labels.items()))]


async def test_scrape_after_known_workload(conn: conveyor.Connection, queue_name: str) -> None:
    began = time.time()
    outcome = await run_workload(conn, queue_name, [HistoryRecorder(conn, flush_interval=0.1)])
    queue = Queue(queue_name, conn)
    await queue.add_bulk([("later", None)] * 3)
    await queue.add("delayed", None, JobOptions(delay=600))
    got = await scrape(conn)
    q = {"queue": queue_name}
    assert value(got, "conveyor_redis_up") == 1
    assert value(got, "conveyor_queue_jobs", state="waiting", **q) == 3
    assert value(got, "conveyor_queue_jobs", state="delayed", **q) == 1
    assert value(got, "conveyor_queue_jobs", state="completed", **q) == outcome.completed
    assert value(got, "conveyor_queue_jobs", state="dead", **q) == outcome.dead
    assert value(got, "conveyor_queue_jobs", state="active", **q) == 0
    assert value(got, "conveyor_queue_dead_letters", **q) == outcome.dead
    assert value(got, "conveyor_queue_paused", **q) == 0
    oldest = value(got, "conveyor_queue_oldest_waiting_age_seconds", **q)
    assert 0 <= oldest <= time.time() - began
    assert value(got, "conveyor_queue_workers_live", **q) == 0
    since = value(got, "conveyor_queue_seconds_since_last_fetch", **q)
    assert 0 <= since <= time.time() - began  # a fetch during this test, not +Inf
    for name in ("attempts", "completed", "failed", "retried", "dead", "rate_limited"):
        total = value(got, f"conveyor_queue_jobs_{name}_total", **q)
        assert total == getattr(outcome, name), name
    assert value(got, "conveyor_queue_jobs_enqueued_total", **q) == 8
    assert value(got, "conveyor_queue_job_duration_seconds_count", **q) == outcome.attempts
    assert value(got, "conveyor_queue_job_duration_seconds_bucket", le="+Inf", **q) == 11
    assert value(got, "conveyor_queue_job_duration_seconds_bucket", le="10.0", **q) == 11


async def test_live_workers_paused_and_never_fetched(
    conn: conveyor.Connection, queue_name: str
) -> None:
    queue = Queue(queue_name, conn)
    entered, release = asyncio.Event(), asyncio.Event()

    async def hold(ctx: JobContext, data: Any) -> None:
        entered.set()
        await release.wait()

    await queue.add("hold")
    other = queue_name + "-idle"
    await Queue(other, conn).pause()
    got = await scrape(conn)
    assert math.isinf(value(got, "conveyor_queue_seconds_since_last_fetch", queue=other))
    assert value(got, "conveyor_queue_paused", queue=other) == 1
    recorder = HistoryRecorder(conn, flush_interval=0.05)
    worker = Worker(conn, [queue_name], {"hold": hold}, middleware=[recorder])
    began = time.time()
    async with running(worker):
        await asyncio.wait_for(entered.wait(), 10)
        deadline = time.monotonic() + 10
        while not await conn.client.exists(worker_key(worker.id)):  # no event to await
            assert time.monotonic() < deadline, "the worker never sent a heartbeat"
            await asyncio.sleep(0.01)
        await recorder.flush()
        got = await scrape(conn)
        release.set()
    assert value(got, "conveyor_queue_workers_live", queue=queue_name) == 1
    assert value(got, "conveyor_queue_workers_live", queue=other) == 0
    assert value(got, "conveyor_workers_live") >= 1
    assert value(got, "conveyor_queue_jobs", queue=queue_name, state="active") == 1
    since = value(got, "conveyor_queue_seconds_since_last_fetch", queue=queue_name)
    assert 0 <= since <= time.time() - began


async def test_redis_down_still_answers(own_server: conveyor.EmbeddedRedis) -> None:
    conn = await conveyor.connect(own_server.url)
    try:
        own_server.stop()
        got = await scrape(conn)
        assert got == {("conveyor_redis_up", frozenset()): 0.0}
    finally:
        await conn.close()


def test_exposed_bounds_are_history_bounds() -> None:
    assert set(EXPOSED_BOUNDS) <= set(BOUNDS)
    assert all(name.startswith("conveyor_") for name in FAMILIES)
