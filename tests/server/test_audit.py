"""The audit trail: one entry per mutating call, with who, what, outcome; bounded."""

from __future__ import annotations

import httpx

import conveyor
from conveyor import Queue
from conveyor.server.audit import AUDIT_STREAM, AuditTrail
from conveyor.server.redaction import MASK


def key_id(token: str) -> str:
    return token[len("cvk_") :].split("_", 1)[0]


async def test_one_entry_per_mutating_call(
    operator: httpx.AsyncClient, viewer: httpx.AsyncClient, tokens: dict[str, str],
    admin: httpx.AsyncClient, queue: Queue,
) -> None:  # fmt: skip
    base = f"/api/v1/queues/{queue.name}"
    calls = [
        ("POST", f"{base}/jobs", {"name": "x", "data": {"password": "s3cret", "n": 1}}, 201),
        ("POST", f"{base}/pause", None, 200),
        ("POST", f"{base}/resume", None, 200),
        ("POST", f"{base}/jobs/missing/cancel", None, 404),
        ("POST", f"{base}/jobs", {"name": "x", "options": {"priority": 5000}}, 422),
        ("DELETE", f"{base}/jobs/missing", None, 404),
    ]
    for method, url, body, status in calls:
        r = await operator.request(method, url, json=body)
        assert r.status_code == status, r.text
        await operator.get(f"{base}/jobs")  # reads are not audited
    denied = await viewer.post(f"{base}/pause")
    assert denied.status_code == 403

    r = await admin.get("/api/v1/audit", params={"key_id": key_id(tokens["operator"])})
    entries = r.json()["entries"]
    assert len(entries) == len(calls)
    newest_first = list(reversed(entries))
    assert [e["action"] for e in newest_first] == [
        "enqueue", "pause_queue", "resume_queue", "cancel_job", "enqueue", "remove_job",
    ]  # fmt: skip
    assert [e["status"] for e in newest_first] == [c[3] for c in calls]
    assert [e["outcome"] for e in newest_first] == [
        "ok", "ok", "ok", "job_not_found", "invalid", "job_not_found",
    ]  # fmt: skip
    first = newest_first[0]
    assert first["key_name"] == "test-operator" and first["role"] == "operator"
    assert first["target"] == {"queue": queue.name}
    assert first["params"]["body"]["data"] == {"password": MASK, "n": 1}
    assert first["client"] == "127.0.0.1" and first["time"] > 0

    r = await admin.get("/api/v1/audit", params={"key_id": key_id(tokens["viewer"])})
    (entry,) = r.json()["entries"]
    assert entry["outcome"] == "forbidden" and entry["action"] == "pause_queue"


async def test_audit_pages_newest_first(admin: httpx.AsyncClient, queue: Queue) -> None:
    for _ in range(5):
        await admin.post(f"/api/v1/queues/{queue.name}/pause")
    r = await admin.get("/api/v1/audit", params={"limit": 2, "action": "pause_queue"})
    page = r.json()
    assert len(page["entries"]) == 2
    r = await admin.get(
        "/api/v1/audit", params={"limit": 2, "action": "pause_queue", "cursor": page["next_cursor"]}
    )
    second = r.json()["entries"]
    assert second[0]["id"] < page["entries"][1]["id"]


async def test_audit_is_bounded_by_retention(conn: conveyor.Connection, queue_name: str) -> None:
    stream = f"{AUDIT_STREAM}:test-{queue_name}"
    await conn.client.xadd(stream, {"action": "ancient"}, id="1-0")
    trail = AuditTrail(conn, maxlen=100_000, retention_days=30, stream=stream)
    await trail.record(
        key_id="k", key_name="n", role="admin", action="new", target={}, params=None,
        client="c", status=200, outcome="ok",
    )  # fmt: skip
    entries, _ = await trail.read(limit=500, scan=100_000)
    assert all(e.action != "ancient" for e in entries)
    assert [e.action for e in entries] == ["new"]
    assert await conn.client.xrange(stream, "-", "1-0") == []
