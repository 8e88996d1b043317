"""Schedules through the API: upsert, list with next fire times, pause, resume, run, remove."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from conveyor import Queue
from tests.server.conftest import assert_error


async def test_schedule_life_cycle(
    admin: httpx.AsyncClient, viewer: httpx.AsyncClient, queue: Queue
) -> None:
    url = f"/api/v1/queues/{queue.name}/schedules"
    body = {"job": "report", "data": {"token": "t", "n": 1}, "cron": "0 2 * * *",
            "tz": "Europe/Berlin"}  # fmt: skip
    r = await admin.put(f"{url}/nightly", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["result"] == "created"
    next_fire = datetime.fromisoformat(r.json()["schedule"]["next_fire"])
    assert next_fire > datetime.now(UTC)
    assert (await admin.put(f"{url}/nightly", json=body)).json()["result"] == "unchanged"

    listed = (await viewer.get(url)).json()["schedules"]
    assert [s["id"] for s in listed] == ["nightly"]
    assert listed[0]["data"]["token"] != "t"  # redacted for a viewer
    everything = (await viewer.get("/api/v1/schedules")).json()["schedules"]
    assert any(s["queue"] == queue.name for s in everything)

    assert_error(await viewer.post(f"{url}/nightly/pause"), 403, "forbidden")
    assert (await admin.post(f"{url}/nightly/pause")).json()["paused"] is True
    assert (await admin.get(f"{url}/nightly")).json()["next_fire"] is None
    assert (await admin.post(f"{url}/nightly/resume")).json()["paused"] is False
    run = (await admin.post(f"{url}/nightly/run")).json()
    assert (await queue.get_job(run["job_id"])).name == "report"
    assert (await admin.delete(f"{url}/nightly")).status_code == 204
    assert_error(await admin.get(f"{url}/nightly"), 404, "schedule_not_found", "schedule_id")


async def test_bad_schedules_are_4xx(admin: httpx.AsyncClient, queue: Queue) -> None:
    url = f"/api/v1/queues/{queue.name}/schedules"
    r = await admin.put(f"{url}/s", json={"job": "x", "cron": "61 * * * *"})
    assert r.status_code == 400 and r.json()["error"]["field"].startswith("cron")
    r = await admin.put(f"{url}/s", json={"job": "x", "every": 5, "tz": "Mars/Olympus"})
    assert_error(r, 400, "invalid", "tz")
    r = await admin.put(f"{url}/s", json={"job": "x"})
    assert_error(r, 400, "invalid", "cron")
    r = await admin.put(f"{url}/a:b", json={"job": "x", "every": 5})
    assert_error(r, 400, "invalid", "id")
    r = await admin.put(f"{url}/s", json={"job": "x", "every": 5, "start": "yesterday"})
    assert_error(r, 422, "invalid", "start")


async def test_a_corrupt_definition_does_not_break_listing(
    viewer: httpx.AsyncClient, admin: httpx.AsyncClient, queue: Queue
) -> None:
    url = f"/api/v1/queues/{queue.name}/schedules"
    r = await admin.put(f"{url}/ok", json={"job": "x", "every": 60})
    assert r.status_code == 200, r.text
    await queue.connection.client.hset(queue.keys.key("sched:def"), "broken", '{"id": "broken"}')
    listed = (await viewer.get(url)).json()["schedules"]
    assert [s["id"] for s in listed] == ["ok"]  # the unreadable one is skipped, not a 500
    everything = (await viewer.get("/api/v1/schedules")).json()["schedules"]
    assert [s["id"] for s in everything if s["queue"] == queue.name] == ["ok"]
