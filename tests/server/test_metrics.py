"""``/metrics`` serves the cluster metrics of conveyor.observability, to keys only."""

from __future__ import annotations

import httpx

from conveyor import Queue


async def test_metrics_are_prometheus_text(
    viewer: httpx.AsyncClient, anonymous: httpx.AsyncClient, queue: Queue
) -> None:
    await queue.add("x", None)
    r = await viewer.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    assert queue.name in r.text and "# TYPE" in r.text
    assert (await anonymous.get("/metrics")).status_code == 401
