"""API keys, roles, queue restriction, rate limiting and redaction."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

import conveyor
from conveyor import Queue
from conveyor.server import KeyStore
from conveyor.server.redaction import MASK
from tests.server.conftest import LiveServer, assert_error, client_for

UNIFORM_401 = {
    "error": {
        "code": "unauthorized",
        "message": "a valid API key is required: Authorization: Bearer <key>",
        "field": "authorization",
    }
}


async def test_key_is_stored_hashed(conn: conveyor.Connection) -> None:
    store = KeyStore(conn)
    key, token = await store.create("ci", "viewer")
    raw = await conn.client.hget("cv:server:keys", key.id)
    assert token.split("_", 2)[2] not in raw and key.secret_hash in raw
    assert (await store.authenticate(token)) is not None
    assert (await store.authenticate(token[:-1] + ("A" if token[-1] != "A" else "B"))) is None


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-key",
        "Bearer cvk_000000000000_" + "x" * 43,
        "Bearer cvk_zz_" + "x" * 43,
        "bearer cvk_\r\n",
    ],
)
async def test_missing_malformed_unknown_tokens_get_one_uniform_401(
    live_server: LiveServer, queue: Queue, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as client:
        try:
            r = await client.get("/api/v1/queues", headers=headers)
        except httpx.LocalProtocolError:
            return  # the client itself refuses CR/LF in a header: it never reaches us
    assert r.status_code == 401
    assert r.json() == UNIFORM_401
    assert r.headers["www-authenticate"] == "Bearer"


async def test_revoked_key_gets_the_same_401(
    live_server: LiveServer, admin: httpx.AsyncClient
) -> None:
    created = await admin.post("/api/v1/keys", json={"name": "temp", "role": "viewer"})
    assert created.status_code == 201, created.text
    token, key_id = created.json()["token"], created.json()["key"]["id"]
    async with client_for(live_server, token) as client:
        assert (await client.get("/api/v1/queues")).status_code == 200
        assert (await admin.delete(f"/api/v1/keys/{key_id}")).status_code == 204
        r = await client.get("/api/v1/queues")
    assert r.status_code == 401 and r.json() == UNIFORM_401
    keys = (await admin.get("/api/v1/keys")).json()["keys"]
    listed = next(k for k in keys if k["id"] == key_id)
    assert listed["revoked_at"] is not None and "secret_hash" not in listed


async def test_viewer_cannot_retry_and_operator_cannot_purge(
    viewer: httpx.AsyncClient, operator: httpx.AsyncClient, queue: Queue
) -> None:
    job = await queue.add("x", None)
    await queue.cancel(job.id)
    r = await viewer.post(f"/api/v1/queues/{queue.name}/jobs/{job.id}/retry")
    assert_error(r, 403, "forbidden", "authorization")
    assert (await queue.get_job(job.id)).state == "cancelled"  # nothing happened
    r = await operator.post(f"/api/v1/dead-letters/{queue.name}/purge")
    assert_error(r, 403, "forbidden", "authorization")
    r = await operator.get("/api/v1/keys")
    assert_error(r, 403, "forbidden")
    r = await operator.post(f"/api/v1/queues/{queue.name}/jobs/{job.id}/retry")
    assert r.status_code == 200


async def test_key_restricted_to_queues(
    live_server: LiveServer, conn: conveyor.Connection, queue_name: str
) -> None:
    mine, other = Queue(f"{queue_name}-mine", conn), Queue(f"{queue_name}-other", conn)
    await mine.add("x", None)
    secret = await other.add("x", None)
    _, token = await KeyStore(conn).create("tenant", "operator", [mine.name])
    async with client_for(live_server, token) as client:
        names = [q["name"] for q in (await client.get("/api/v1/queues")).json()["queues"]]
        assert names == [mine.name]
        r = await client.get(f"/api/v1/queues/{other.name}/jobs/{secret.id}")
        assert_error(r, 403, "forbidden_queue", "queue")
        r = await client.post(f"/api/v1/queues/{other.name}/pause")
        assert_error(r, 403, "forbidden_queue", "queue")
        assert not await other.is_paused()


async def test_rate_limit_per_key_with_retry_after(
    make_server: Any, conn: conveyor.Connection
) -> None:
    server = make_server(rate_limit_per_minute=5)
    store = KeyStore(conn)
    _, first = await store.create("a", "viewer")
    _, second = await store.create("b", "viewer")
    async with client_for(server, first) as a, client_for(server, second) as b:
        codes = [(await a.get("/api/v1/workers")).status_code for _ in range(7)]
        # a minute boundary may reset the window once; at least one call must be limited
        assert codes.count(429) >= 1 and codes[:5].count(200) >= 4
        r = await a.get("/api/v1/workers")
        if r.status_code == 429:
            assert_error(r, 429, "rate_limited")
            assert 1 <= int(r.headers["retry-after"]) <= 60
        assert (await b.get("/api/v1/workers")).status_code == 200  # another key is unaffected


async def test_an_address_guessing_keys_is_refused_even_a_right_one(
    make_server: Any, conn: conveyor.Connection
) -> None:
    server = make_server(auth_failures_per_minute=3)
    _, token = await KeyStore(conn).create("real", "viewer")
    if 60 - time.time() % 60 < 5:  # the counts are per minute: start well inside one
        await asyncio.sleep(60 - time.time() % 60 + 0.1)
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    # Addresses of their own: other tests' invalid keys from 127.0.0.1 count this minute too.
    async with httpx.AsyncClient(
        base_url=server.url, transport=httpx.AsyncHTTPTransport(local_address="127.0.0.3"),
        headers={"Authorization": f"Bearer {wrong}"},
    ) as guesser:  # fmt: skip
        codes = [(await guesser.get("/api/v1/workers")).status_code for _ in range(3)]
        assert codes == [401, 401, 401]
        r = await guesser.get("/api/v1/workers")
        assert_error(r, 429, "auth_rate_limited", "authorization")
        assert 1 <= int(r.headers["retry-after"]) <= 60
        right = await guesser.get("/api/v1/workers", headers={"Authorization": f"Bearer {token}"})
        assert_error(right, 429, "auth_rate_limited", "authorization")
    elsewhere = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(
        base_url=server.url, transport=elsewhere, headers={"Authorization": f"Bearer {token}"}
    ) as other:
        assert (await other.get("/api/v1/workers")).status_code == 200


async def test_viewer_sees_redacted_payloads(
    viewer: httpx.AsyncClient, operator: httpx.AsyncClient, queue: Queue
) -> None:
    data = {"user": "ann", "password": "hunter2", "nested": {"api_key": "k-1", "ok": 1},
            "note": "card 4111 1111 1111 1111 on file", "Authorization": "Bearer x"}  # fmt: skip
    job = await queue.add("x", data)
    seen = (await viewer.get(f"/api/v1/queues/{queue.name}/jobs/{job.id}")).json()["data"]
    assert seen == {"user": "ann", "password": MASK, "nested": {"api_key": MASK, "ok": 1},
                    "note": f"card {MASK} on file", "Authorization": MASK}  # fmt: skip
    full = (await operator.get(f"/api/v1/queues/{queue.name}/jobs/{job.id}")).json()["data"]
    assert full == data


async def test_keys_api_validates_input(admin: httpx.AsyncClient) -> None:
    r = await admin.post("/api/v1/keys", json={"name": "x", "role": "root"})
    assert_error(r, 422, "invalid", "role")
    r = await admin.post("/api/v1/keys", json={"name": "x", "role": "viewer", "queues": ["a:b"]})
    assert_error(r, 400, "invalid", "queue")
    r = await admin.delete("/api/v1/keys/not-hex")
    assert_error(r, 400, "invalid", "key_id")
    r = await admin.delete("/api/v1/keys/000000000000")
    assert_error(r, 404, "not_found", "key_id")
