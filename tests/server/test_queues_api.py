"""Queues, dead letters and workers through the API, with real workers."""

from __future__ import annotations

import time
from typing import Any

import httpx

import conveyor
from conveyor import JobOptions, Queue, UnrecoverableError
from tests.conftest import wait_for_state


async def boom(ctx: conveyor.JobContext, data: Any) -> None:
    raise UnrecoverableError(f"broken {data}")


async def ok(ctx: conveyor.JobContext, data: Any) -> str:
    return "ok"


async def make_dead(queue: Queue, start_worker: Any, names: list[str]) -> list[str]:
    ids = [(await queue.add(name, {"n": i})).id for i, name in enumerate(names)]
    async with start_worker({"boom": boom, "boom2": boom}):
        for job_id in ids:
            await wait_for_state(queue, job_id, "dead")
    return ids


async def test_queue_list_and_detail(
    viewer: httpx.AsyncClient, queue: Queue, start_worker: Any
) -> None:
    await queue.add("x", None, JobOptions(delay=3600))
    async with start_worker({"ok": ok}) as worker:
        done = await queue.add("ok", None)
        await wait_for_state(queue, done.id, "completed")
        listed = (await viewer.get("/api/v1/queues")).json()["queues"]
        mine = next(q for q in listed if q["name"] == queue.name)
        assert mine["counts"]["delayed"] == 1 and mine["counts"]["completed"] == 1
        assert mine["workers"] == 1 and mine["paused"] is False
        assert mine["rates"]["completed_per_minute"] > 0
        workers = (await viewer.get("/api/v1/workers")).json()["workers"]
        me = next(w for w in workers if w["id"] == worker.id)
        assert me["queues"] == [queue.name] and me["heartbeat_age"] < 30
    detail = (await viewer.get(f"/api/v1/queues/{queue.name}")).json()
    assert detail["name"] == queue.name and "health" in detail
    r = await viewer.get("/api/v1/queues/never-written-queue")
    assert r.status_code == 404 and r.json()["error"]["code"] == "queue_not_found"


async def test_pause_resume_promote_all(operator: httpx.AsyncClient, queue: Queue) -> None:
    await queue.add_bulk([("x", None, JobOptions(delay=3600))] * 3)
    r = await operator.post(f"/api/v1/queues/{queue.name}/pause")
    assert r.json() == {"name": queue.name, "paused": True} and await queue.is_paused()
    r = await operator.post(f"/api/v1/queues/{queue.name}/resume")
    assert r.status_code == 200 and not await queue.is_paused()
    r = await operator.post(f"/api/v1/queues/{queue.name}/promote-all")
    assert r.json() == {"promoted": 3}
    assert (await queue.counts())["waiting"] == 3


async def test_clean_is_admin_only(
    admin: httpx.AsyncClient, operator: httpx.AsyncClient, queue: Queue
) -> None:
    job = await queue.add("x", None)
    await queue.cancel(job.id)
    await queue.connection.client.zadd(queue.keys.cancelled, {job.id: 1000})
    body = {"state": "cancelled", "older_than": 60}
    r = await operator.post(f"/api/v1/queues/{queue.name}/clean", json=body)
    assert r.status_code == 403
    r = await admin.post(f"/api/v1/queues/{queue.name}/clean", json=body)
    assert r.json() == {"removed": 1}
    r = await admin.post(f"/api/v1/queues/{queue.name}/clean", json={**body, "state": "waiting"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "state"


async def test_dead_letters_list_requeue_edit_purge(
    operator: httpx.AsyncClient, admin: httpx.AsyncClient, queue: Queue, start_worker: Any
) -> None:
    ids = await make_dead(queue, start_worker, ["boom", "boom", "boom2", "boom2"])
    r = await operator.get("/api/v1/dead-letters", params={"queue": queue.name, "limit": 3})
    page = r.json()
    assert len(page["jobs"]) == 3 and page["next_cursor"] is not None
    r = await operator.get(
        "/api/v1/dead-letters", params={"queue": queue.name, "cursor": page["next_cursor"]}
    )
    assert len(r.json()["jobs"]) == 1
    assert r.json()["jobs"][0]["error"]["type"] == "UnrecoverableError"

    r = await operator.post(
        f"/api/v1/dead-letters/{queue.name}/{ids[0]}/requeue",
        json={"data": {"fixed": True}, "replace_data": True},
    )
    assert r.status_code == 200, r.text
    assert (await queue.get_job(ids[0])).data == {"fixed": True}
    r = await operator.post(f"/api/v1/dead-letters/{queue.name}/{ids[0]}/requeue")
    assert r.status_code == 409  # no longer dead

    r = await operator.post(f"/api/v1/dead-letters/{queue.name}/requeue", json={"name": "boom"})
    assert r.json() == {"requeued": 1}
    r = await admin.post(
        f"/api/v1/dead-letters/{queue.name}/purge", json={"until": time.time() + 60}
    )
    assert r.json() == {"purged": 2}
    assert (await queue.counts())["dead"] == 0


async def test_dead_letters_across_queues(
    admin: httpx.AsyncClient, conn: conveyor.Connection, queue: Queue, start_worker: Any
) -> None:
    await make_dead(queue, start_worker, ["boom"])
    seen: list[str] = []
    cursor = None
    for _ in range(1000):
        params: dict[str, Any] = {"limit": 50}
        if cursor:
            params["cursor"] = cursor
        page = (await admin.get("/api/v1/dead-letters", params=params)).json()
        seen += [j["queue"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert queue.name in seen


async def test_retry_dead_on_queue(
    operator: httpx.AsyncClient, queue: Queue, start_worker: Any
) -> None:
    await make_dead(queue, start_worker, ["boom", "boom2"])
    r = await operator.post(
        f"/api/v1/queues/{queue.name}/retry-dead", json={"error_type": "UnrecoverableError"}
    )
    assert r.json() == {"requeued": 2}
    assert (await queue.counts())["waiting"] == 2
