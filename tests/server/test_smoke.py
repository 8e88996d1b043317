"""Quick end-to-end checks of the served API."""

from __future__ import annotations

import httpx

from conveyor import Queue


async def test_enqueue_list_get(admin: httpx.AsyncClient, queue: Queue) -> None:
    r = await admin.post(
        f"/api/v1/queues/{queue.name}/jobs", json={"name": "send", "data": {"to": "x"}}
    )
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    r = await admin.get(f"/api/v1/queues/{queue.name}/jobs")
    assert r.status_code == 200, r.text
    assert [j["id"] for j in r.json()["jobs"]] == [job_id]
    r = await admin.get(f"/api/v1/queues/{queue.name}/jobs/{job_id}")
    assert r.json()["data"] == {"to": "x"}
    r = await admin.get("/api/v1/queues")
    assert r.status_code == 200, r.text
    r = await admin.get("/api/v1/openapi.json")
    assert r.status_code == 200
