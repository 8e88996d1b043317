"""Probes, per-queue health flipping with its thresholds and back, and Redis outages."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

import conveyor
from conveyor import EmbeddedRedis, Queue, UnrecoverableError
from conveyor.server import KeyStore
from tests.conftest import wait_for_state
from tests.server.conftest import LiveServer, assert_error, client_for


async def test_healthz_needs_nothing(anonymous: httpx.AsyncClient) -> None:
    r = await anonymous.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert "access-control-allow-origin" not in r.headers


async def test_readyz_wants_a_worker_for_queues_with_work(
    make_server: Any, own_server: EmbeddedRedis, settings: Any
) -> None:
    server: LiveServer = make_server(own_server.url)
    conn = await conveyor.connect(own_server.url, settings=settings)
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"]["eviction_policy"] == "noeviction"
            queue = Queue("orders", conn)
            job = await queue.add("x", None)
            r = await client.get("/readyz")
            assert r.status_code == 503
            assert r.json()["checks"]["queues_without_worker"] == ["orders"]
            worker = conveyor.Worker(conn, ["orders"], {"x": _noop})
            task = asyncio.create_task(worker.run())
            await worker.started.wait()
            await wait_for_state(queue, job.id, "completed")
            assert (await client.get("/readyz")).status_code == 200
            worker.stop()
            await task
    finally:
        await conn.close()


async def _noop(ctx: conveyor.JobContext, data: Any) -> None:
    return None


async def test_queue_health_flips_and_recovers(
    make_server: Any, conn: conveyor.Connection, queue: Queue, start_worker: Any
) -> None:
    thresholds = {"waiting_degraded": 2, "dead_degraded": None, "dead_unhealthy": 0}
    server = make_server(queue_health={queue.name: thresholds})
    _, token = await KeyStore(conn).create("health", "viewer")
    url = f"/api/v1/queues/{queue.name}/health"

    async def boom(ctx: conveyor.JobContext, data: Any) -> None:
        raise UnrecoverableError("broken")

    async with client_for(server, token) as client, start_worker({"noop": _noop, "boom": boom}):
        first = await queue.add("noop", None)
        await wait_for_state(queue, first.id, "completed")
        assert (await client.get(url)).json()["status"] == "healthy"
        await queue.pause()
        await queue.add_bulk([("noop", None)] * 3)
        body = (await client.get(url)).json()
        assert body["status"] == "degraded", body
        assert any("waiting" in reason for reason in body["reasons"])

        dead = await queue.add("boom", None)
        await queue.resume()
        await wait_for_state(queue, dead.id, "dead")
        body = (await client.get(url)).json()
        assert body["status"] == "unhealthy", body
        assert any("dead" in reason for reason in body["reasons"])

        await queue.purge_dead()
        await _until_empty(queue)
        body = (await client.get(url)).json()
        assert body["status"] == "healthy", body
        assert body["reasons"] == []


async def _until_empty(queue: Queue) -> None:
    deadline = time.monotonic() + 10
    while (await queue.counts())["waiting"] or (await queue.counts())["active"]:
        assert time.monotonic() < deadline
        async for _ in queue.events(after="$", block_ms=100):
            break


async def test_no_worker_for_waiting_work_is_unhealthy(
    viewer: httpx.AsyncClient, queue: Queue
) -> None:
    await queue.add("x", None)
    body = (await viewer.get(f"/api/v1/queues/{queue.name}/health")).json()
    assert body["status"] == "unhealthy"
    assert any("no live worker" in reason for reason in body["reasons"])
    await queue.pause()  # a paused queue is expected not to be served
    body = (await viewer.get(f"/api/v1/queues/{queue.name}/health")).json()
    assert body["status"] == "healthy", body


async def test_redis_down_is_a_fast_503_with_retry_after(
    make_server: Any, own_server: EmbeddedRedis, settings: Any
) -> None:
    conn = await conveyor.connect(own_server.url, settings=settings)
    _, token = await KeyStore(conn).create("x", "viewer")
    await conn.close()
    server: LiveServer = make_server(own_server.url)
    async with client_for(server, token) as client:
        assert (await client.get("/api/v1/queues")).status_code == 200
        own_server.kill()
        started = time.monotonic()
        r = await client.get("/api/v1/queues")
        assert_error(r, 503, "redis_unavailable")
        assert r.headers["retry-after"] == "2"
        r = await client.get("/readyz")
        assert r.status_code == 503 and r.headers["retry-after"] == "2"
        assert time.monotonic() - started < 3
        assert (await client.get("/healthz")).status_code == 200
        own_server.start()
        assert (await client.get("/api/v1/queues")).status_code == 200


async def test_cors_only_when_configured(make_server: Any) -> None:
    server: LiveServer = make_server(cors_origins=["https://ops.example"])
    preflight = {"Origin": "https://ops.example", "Access-Control-Request-Method": "GET"}
    async with httpx.AsyncClient(base_url=server.url) as client:
        r = await client.options("/api/v1/queues", headers=preflight)
        assert r.headers["access-control-allow-origin"] == "https://ops.example"
        r = await client.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers
