"""The SSE stream delivers a job's transitions in order, and resumes with Last-Event-ID."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

import conveyor
from conveyor import Queue
from conveyor.server.redaction import MASK


async def sse(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """Parse a text/event-stream into dicts with id, event and data."""
    event: dict[str, Any] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "event" in event:
                yield event
            event = {}
        elif line.startswith("retry:"):
            yield {"event": "__connected__"}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            event[name] = json.loads(value) if name == "data" else value


async def collect(
    stream: AsyncIterator[dict[str, Any]], job_id: str, until: str
) -> list[dict[str, Any]]:
    seen = []
    async for event in stream:
        if event.get("data", {}).get("job") == job_id:
            seen.append(event)
            if event["event"] == until:
                return seen
    raise AssertionError("stream ended")


async def test_job_transitions_arrive_in_order_and_resume(
    viewer: httpx.AsyncClient, queue: Queue, start_worker: Any
) -> None:
    async def work(ctx: conveyor.JobContext, data: Any) -> str:
        await ctx.progress({"pct": 50, "password": "p"})
        return "ok"

    url = "/api/v1/events"
    async with viewer.stream("GET", url, params={"queue": queue.name}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = sse(response)
        assert (await anext(stream))["event"] == "__connected__"
        job = await queue.add("work", {"n": 1})
        async with start_worker({"work": work}):
            seen = await asyncio.wait_for(collect(stream, job.id, "completed"), 20)
    assert [e["event"] for e in seen] == ["waiting", "active", "progress", "completed"]
    assert all(e["data"]["queue"] == queue.name for e in seen)
    progress = json.loads(json.dumps(seen[2]["data"]["progress"]))
    assert progress == {"pct": 50, "password": MASK}  # a viewer's stream is redacted

    resume_from = seen[0]["id"]
    headers = {"Last-Event-ID": resume_from}
    async with viewer.stream("GET", url, params={"queue": queue.name}, headers=headers) as again:
        stream = sse(again)
        assert (await anext(stream))["event"] == "__connected__"
        replay = await asyncio.wait_for(collect(stream, job.id, "completed"), 20)
    assert [e["event"] for e in replay] == ["active", "progress", "completed"]
    assert [e["id"] for e in replay] == [e["id"] for e in seen[1:]]


async def test_events_of_several_queues_and_access(
    viewer: httpx.AsyncClient, conn: conveyor.Connection, queue_name: str
) -> None:
    first, second = Queue(f"{queue_name}-1", conn), Queue(f"{queue_name}-2", conn)
    await first.add("x", None)
    await second.add("x", None)
    params = {"queue": [first.name, second.name]}
    async with viewer.stream("GET", "/api/v1/events", params=params) as response:
        stream = sse(response)
        await anext(stream)
        a = await first.add("x", None)
        b = await second.add("x", None)
        got_a = await asyncio.wait_for(collect(stream, a.id, "waiting"), 10)
        got_b = await asyncio.wait_for(collect(stream, b.id, "waiting"), 10)
    assert got_a[0]["data"]["queue"] == first.name and got_b[0]["data"]["queue"] == second.name
    cursor = dict(part.split("=") for part in got_b[0]["id"].split(","))
    assert set(cursor) == {first.name, second.name}
    r = await viewer.get("/api/v1/events", params={"queue": "bad:name"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "queue"
