"""Metric history: exact per-minute counts, percentiles, roll-ups, retention, bad queries."""

from __future__ import annotations

import time

import pytest

import conveyor
from conveyor.keys import QueueKeys
from conveyor.observability import history
from conveyor.observability.history import (
    BOUNDS,
    HistoryRecorder,
    InvalidHistoryQuery,
    bucket_of,
    percentile,
)
from tests.observability.conftest import run_workload


def summed(points: list[history.Point], name: str) -> int:
    return sum(p.counts[name] for p in points)


async def test_known_workload_per_minute(conn: conveyor.Connection, queue_name: str) -> None:
    recorder = HistoryRecorder(conn, flush_interval=0.1)
    outcome = await run_workload(conn, queue_name, [recorder])
    # The run may straddle a minute boundary: add up the last few minutes.
    minutes = await history.read(conn, queue_name, since=time.time() - 300)
    assert len(minutes) == 6 and all(p.seconds == 60 for p in minutes)
    for name in ("attempts", "completed", "failed", "retried", "dead", "rate_limited"):
        assert summed(minutes, name) == getattr(outcome, name), name
    assert summed(minutes, "enqueued") == 8
    assert sum(p.processing.count for p in minutes) == outcome.attempts
    assert sum(p.wait.count for p in minutes) == 8  # first activations only
    busy = [p for p in minutes if p.processing.count]
    assert all(p.processing.p99 is not None and p.processing.p99 < 10 for p in busy)
    for resolution in ("hour", "day"):
        points = await history.read(conn, queue_name, resolution=resolution)
        assert summed(points, "completed") == outcome.completed, resolution
    totals = (await history.totals(conn, [queue_name]))[queue_name]
    assert int(totals["completed"]) == outcome.completed
    assert int(totals["last_fetch_ms"]) > (time.time() - 60) * 1000


async def test_minutes_percentiles_and_retention(
    conn: conveyor.Connection, queue_name: str
) -> None:
    recorder = HistoryRecorder(conn)
    start = (int(time.time()) // 60 - 3) * 60  # a whole minute, three minutes ago
    for i in range(100):  # 10 ms .. 1 s processing, evenly spread, in the first minute
        recorder.record_latency(queue_name, "p", (i + 1) / 100, start + 1)
        recorder.record(queue_name, "completed", now=start + 1)
    recorder.record(queue_name, "failed", 3, now=start + 121)
    await recorder.flush()
    points = await history.read(conn, queue_name, since=start, until=start + 179)
    assert [p.start for p in points] == [start, start + 60, start + 120]
    assert [p.counts["completed"] for p in points] == [100, 0, 0]
    assert [p.counts["failed"] for p in points] == [0, 0, 3]
    first = points[0].processing
    assert first.count == 100
    assert first.mean == pytest.approx(0.505)
    # Exact to within the bucket holding the true value.
    for got, true in ((first.p50, 0.50), (first.p95, 0.95), (first.p99, 0.99)):
        assert got is not None
        assert bucket_of(got) == bucket_of(true), (got, true)
    assert points[1].processing == history.Latency(0, None, None, None, None)
    keys = QueueKeys(queue_name)
    ttl = await conn.client.ttl(history.period_key(keys, "minute", start // 60))
    assert 48 * 3600 < ttl <= 48 * 3600 + 60
    ttl = await conn.client.ttl(history.period_key(keys, "day", start // 86400))
    assert 365 * 86400 < ttl <= 367 * 86400


async def test_nothing_lost_while_redis_is_down(own_server: conveyor.EmbeddedRedis) -> None:
    conn = await conveyor.connect(own_server.url)
    try:
        recorder = HistoryRecorder(conn)
        recorder.record("q", "completed", 2)
        own_server.stop()
        await recorder.flush()  # fails; the counts are kept
        own_server.start()
        await recorder.flush()
        points = await history.read(conn, "q", since=time.time() - 60)
        assert summed(points, "completed") == 2
    finally:
        await conn.close()


async def test_bad_queries_name_the_field(conn: conveyor.Connection) -> None:
    with pytest.raises(InvalidHistoryQuery) as error:
        await history.read(conn, "q", resolution="week")
    assert error.value.field == "resolution"
    with pytest.raises(InvalidHistoryQuery) as error:
        await history.read(conn, "q", since=time.time(), until=time.time() - 600)
    assert error.value.field == "since"
    with pytest.raises(InvalidHistoryQuery) as error:
        await history.read(conn, "q", since=0)  # decades of minutes
    assert "at most 2880" in str(error.value)
    with pytest.raises(InvalidHistoryQuery) as error:
        await history.read(conn, "q", until="now")  # type: ignore[arg-type]
    assert error.value.field == "until"
    with pytest.raises(conveyor.InvalidQueueName):
        await history.read(conn, "bad:name")
    with pytest.raises(InvalidHistoryQuery):
        HistoryRecorder(conn, flush_interval=0)


def test_percentile_interpolates_inside_buckets() -> None:
    assert percentile({}, 0, 0.5) is None
    assert percentile({bucket_of(0.3): 10}, 10, 1.0) == BOUNDS[bucket_of(0.3)]
    assert percentile({len(BOUNDS): 1}, 1, 0.5) == BOUNDS[-1]  # beyond the last bound
    assert BOUNDS[0] == 0.001 and 3200 in BOUNDS and list(BOUNDS) == sorted(set(BOUNDS))
