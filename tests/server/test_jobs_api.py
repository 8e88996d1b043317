"""Jobs through the API, against a real Redis and real workers."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

import conveyor
from conveyor import JobOptions, Queue, UnrecoverableError
from tests.conftest import wait_for_state


def jobs_url(queue: Queue, suffix: str = "") -> str:
    return f"/api/v1/queues/{queue.name}/jobs{suffix}"


async def test_enqueue_with_options_reads_back(operator: httpx.AsyncClient, queue: Queue) -> None:
    body = {
        "name": "send", "data": {"to": "a@example.com"},
        "options": {"job_id": "order-1", "priority": 5, "attempts": 7, "delay": 60,
                    "backoff": {"kind": "fixed", "delay": 2}, "meta": {"tenant": "acme"}},
    }  # fmt: skip
    r = await operator.post(jobs_url(queue), json=body)
    assert r.status_code == 201, r.text
    assert r.json() == {"id": "order-1", "created": True, "outcome": "created"}
    again = await operator.post(jobs_url(queue), json=body)
    assert again.json() == {"id": "order-1", "created": False, "outcome": "exists"}
    job = await queue.get_job("order-1")
    assert job.state == "delayed" and job.priority == 5 and job.options["attempts"] == 7
    assert job.options["backoff"]["kind"] == "fixed" and job.meta == {"tenant": "acme"}


async def test_a_retried_request_with_an_idempotency_key_makes_one_job(
    operator: httpx.AsyncClient, queue: Queue
) -> None:
    body = {"name": "charge", "data": {"cents": 500}, "options": {"idempotency_key": "req-7"}}
    first = (await operator.post(jobs_url(queue), json=body)).json()
    replay = await operator.post(jobs_url(queue), json=body)
    assert replay.status_code == 201
    assert replay.json() == {"id": first["id"], "created": False, "outcome": "idempotent"}
    changed = {**body, "data": {"cents": 900}}
    r = await operator.post(jobs_url(queue), json=changed)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "idempotency_conflict"
    assert r.json()["error"]["field"] == "idempotency_key"
    assert (await queue.counts())["waiting"] == 1


async def test_dedup_group_and_deadline_reach_the_job(
    operator: httpx.AsyncClient, queue: Queue
) -> None:
    digest = {"name": "digest", "data": {"n": 1},
              "options": {"dedup": {"key": "user-1", "window": 60}, "group": "tenant-a",
                          "deadline": 30}}  # fmt: skip
    r = await operator.post(jobs_url(queue, "/bulk"), json={"jobs": [digest]})
    assert r.status_code == 201, r.text
    (first,) = r.json()["jobs"]
    assert first["outcome"] == "created"
    second = (await operator.post(jobs_url(queue), json=digest)).json()
    assert second == {"id": first["id"], "created": False, "outcome": "duplicate"}
    shown = (await operator.get(jobs_url(queue, f"/{first['id']}"))).json()
    assert shown["group"] == "tenant-a" and shown["deadline"] == 30
    for bad, field in (
        ({"dedup": {"key": "k", "window": 0}}, "options.dedup.window"),
        ({"dedup": {"key": "k", "window": 5, "mode": "sometimes"}}, "options.dedup.mode"),
        ({"group": 'has"quote'}, "group"),
        ({"deadline": -1}, "options.deadline"),
        ({"idempotency_key": ""}, "options.idempotency_key"),
    ):
        r = await operator.post(jobs_url(queue), json={"name": "x", "options": bad})
        assert r.status_code in (400, 422), r.text
        assert r.json()["error"]["field"] == field, r.text
    assert (await queue.counts())["waiting"] == 1


async def test_bulk_enqueue_is_all_or_nothing(operator: httpx.AsyncClient, queue: Queue) -> None:
    jobs = [{"name": "n", "data": {"i": i}} for i in range(20)]
    r = await operator.post(jobs_url(queue, "/bulk"), json={"jobs": jobs})
    assert r.status_code == 201, r.text
    assert len(r.json()["jobs"]) == 20
    bad = [*jobs, {"name": "n", "data": {"deep": [[[[]]]] * 1}, "options": {"priority": 5000}}]
    r = await operator.post(jobs_url(queue, "/bulk"), json={"jobs": bad})
    assert r.status_code == 422
    assert r.json()["error"]["field"].startswith("jobs.20.options.priority")
    assert (await queue.counts())["waiting"] == 20


async def test_list_pages_with_cursor_and_filters(viewer: httpx.AsyncClient, queue: Queue) -> None:
    await queue.add_bulk([("a" if i % 2 else "b", {"text": f"item-{i}"}) for i in range(30)])
    await queue.add("a", {"text": "needle*?[x]"})
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 7}
        if cursor:
            params["cursor"] = cursor
        r = await viewer.get(jobs_url(queue), params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [j["id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 31
    r = await viewer.get(jobs_url(queue), params={"name": "b", "limit": 100})
    assert {j["name"] for j in r.json()["jobs"]} == {"b"} and len(r.json()["jobs"]) == 15


async def test_search_is_literal_text_and_needs_payload_permission(
    operator: httpx.AsyncClient, viewer: httpx.AsyncClient, queue: Queue
) -> None:
    await queue.add_bulk([("a", {"text": f"item-{i}"}) for i in range(10)])
    await queue.add("a", {"text": "needle*?[x]"})
    r = await operator.get(jobs_url(queue), params={"search": "*?[x]"})
    assert [j["data"]["text"] for j in r.json()["jobs"]] == ["needle*?[x]"]
    r = await operator.get(jobs_url(queue), params={"search": "*"})
    assert len(r.json()["jobs"]) == 1  # '*' is a character, not a wildcard
    r = await viewer.get(jobs_url(queue), params={"search": "needle"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "search"


async def test_time_range_filter(operator: httpx.AsyncClient, queue: Queue) -> None:
    early = await queue.add("x", None)
    await asyncio.sleep(0.05)
    middle = time.time()
    await asyncio.sleep(0.05)
    late = await queue.add("x", None)
    r = await operator.get(jobs_url(queue), params={"since": middle})
    assert [j["id"] for j in r.json()["jobs"]] == [late.id]
    r = await operator.get(jobs_url(queue), params={"until": middle})
    assert [j["id"] for j in r.json()["jobs"]] == [early.id]


async def test_detail_has_attempts_errors_logs_and_timeline(
    operator: httpx.AsyncClient, queue: Queue, start_worker: Any
) -> None:
    async def flaky(ctx: conveyor.JobContext, data: Any) -> str:
        await ctx.progress({"step": 1})
        if ctx.attempt == 1:
            raise ValueError("first try fails")
        return "done"

    job = await queue.add("flaky", {"x": 1}, JobOptions(backoff=conveyor.Backoff.fixed(0.01)))
    async with start_worker({"flaky": flaky}):
        await wait_for_state(queue, job.id, "completed")
    r = await operator.get(jobs_url(queue, f"/{job.id}"))
    assert r.status_code == 200, r.text
    detail = r.json()
    assert detail["state"] == "completed" and detail["result"] == "done"
    assert detail["progress"] == {"step": 1}
    assert detail["attempts"][0]["error_type"] == "ValueError"
    assert "first try fails" in detail["attempts"][0]["traceback"]
    events = [e["event"] for e in detail["timeline"]]
    assert events[0] == "created" and events[-1] == "completed"


async def test_retry_cancel_promote_priority_remove(
    operator: httpx.AsyncClient, queue: Queue, start_worker: Any
) -> None:
    async def boom(ctx: conveyor.JobContext, data: Any) -> None:
        raise UnrecoverableError("no")

    delayed = await queue.add("x", None, JobOptions(delay=3600))
    r = await operator.post(jobs_url(queue, f"/{delayed.id}/promote"))
    assert r.status_code == 200 and (await queue.get_job(delayed.id)).state == "waiting"
    r = await operator.post(jobs_url(queue, f"/{delayed.id}/priority"), json={"priority": 9})
    assert r.status_code == 200 and (await queue.get_job(delayed.id)).priority == 9
    r = await operator.post(jobs_url(queue, f"/{delayed.id}/cancel"))
    assert r.json()["cancel"] == "cancelled"
    r = await operator.post(jobs_url(queue, f"/{delayed.id}/retry"))
    assert r.status_code == 200 and (await queue.get_job(delayed.id)).state == "waiting"
    r = await operator.delete(jobs_url(queue, f"/{delayed.id}"))
    assert r.status_code == 204
    r = await operator.get(jobs_url(queue, f"/{delayed.id}"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "job_not_found"
    r = await operator.post(jobs_url(queue, f"/{delayed.id}/priority"), json={"priority": 1})
    assert r.status_code == 404 and r.json()["error"]["code"] == "job_not_found"

    dead = await queue.add("boom", {"v": 1})
    async with start_worker({"boom": boom}):
        await wait_for_state(queue, dead.id, "dead")
    r = await operator.post(
        jobs_url(queue, f"/{dead.id}/retry"), json={"data": {"v": 2}, "replace_data": True}
    )
    assert r.status_code == 200, r.text
    job = await queue.get_job(dead.id)
    assert job.state == "waiting" and job.data == {"v": 2}


async def test_invalid_transitions_are_409(
    operator: httpx.AsyncClient, queue: Queue, start_worker: Any
) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow(ctx: conveyor.JobContext, data: Any) -> None:
        started.set()
        await release.wait()

    waiting = await queue.add("x", None)
    r = await operator.post(jobs_url(queue, f"/{waiting.id}/promote"))
    assert r.status_code == 409 and r.json()["error"]["code"] == "invalid_state"
    await queue.remove(waiting.id)
    active = await queue.add("slow", None)
    async with start_worker({"slow": slow}):
        await asyncio.wait_for(started.wait(), 10)
        r = await operator.delete(jobs_url(queue, f"/{active.id}"))
        assert r.status_code == 409, r.text
        release.set()
        await wait_for_state(queue, active.id, "completed")
