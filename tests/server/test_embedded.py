"""Serving the API inside a host program's event loop, as the demo does."""

from __future__ import annotations

import httpx

import conveyor
from conveyor import Queue
from conveyor.server import ServerSettings
from conveyor.server.embedded import serve_in_loop


async def test_serve_in_loop_with_admin_key(conn: conveyor.Connection, queue: Queue) -> None:
    await queue.add("x", None)
    api = await serve_in_loop(conn, ServerSettings(port=0))
    try:
        headers = {"Authorization": f"Bearer {api.token}"}
        async with httpx.AsyncClient(base_url=api.url, headers=headers) as client:
            r = await client.get(f"/queues/{queue.name}")
            assert r.status_code == 200 and r.json()["counts"]["waiting"] == 1
            assert (await client.get("/keys")).status_code == 200  # an admin key
    finally:
        await api.stop()
    assert api.task.done()
