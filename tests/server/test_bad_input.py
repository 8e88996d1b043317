"""Every kind of bad input is a 4xx in the error envelope, and nothing is written."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from conveyor import Queue
from tests.server.conftest import LiveServer, assert_error

JSON = {"Content-Type": "application/json"}


def jobs(queue: Queue) -> str:
    return f"/api/v1/queues/{queue.name}/jobs"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "x", "data": ',  # truncated
        b'{"name": "x" "data": 1}',  # malformed
        b"{'name': 'x'}",  # not JSON quotes
        b'{"name": "x", "data": NaN}',
        b'{"name": "x", "data": [Infinity]}',
        b'{"name": "x", "data": -Infinity}',
        b'{"name": "x", "data": ' + b"9" * 5000 + b"}",  # beyond Python's int-string limit
        b'{"name": "x", "data": 123456789012345678901234567890}',  # beyond 64 bits
        b'{"name": "x", "data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"name": "x", "data": ' + b'{"a":' * 50 + b"1" + b"}" * 50 + b"}",
        b'{"name": "\xff\xfe"}',  # not UTF-8
    ],
)
async def test_bad_json_is_400_and_writes_nothing(
    operator: httpx.AsyncClient, queue: Queue, raw: bytes
) -> None:
    r = await operator.post(jobs(queue), content=raw, headers=JSON)
    assert_error(r, 400, "invalid_json", "body")
    assert await queue.counts() == {s: 0 for s in (await queue.counts())}


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/python-pickle", ""],
)
async def test_wrong_content_type_is_415(
    operator: httpx.AsyncClient, queue: Queue, content_type: str
) -> None:
    r = await operator.post(
        jobs(queue), content=b'{"name": "x"}', headers={"Content-Type": content_type}
    )
    assert_error(r, 415, "unsupported_media_type", "content-type")


async def raw_post(server: LiveServer, path: str, token: str, head: str, body: bytes) -> bytes:
    """Send a request by hand, then read the whole answer: a client that stops sending
    after the limit, so the test does not race the server closing the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    request = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\n{head}\r\n"
    )
    writer.write(request.encode() + body)
    await writer.drain()
    head_bytes = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    length = next(
        int(line.split(b":")[1]) for line in head_bytes.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )  # fmt: skip
    answer = head_bytes + await asyncio.wait_for(reader.readexactly(length), 30)
    writer.close()
    return answer


async def test_oversized_bodies_are_413(
    live_server: LiveServer, tokens: dict[str, str], queue: Queue
) -> None:
    path, token = jobs(queue), tokens["operator"]
    answer = await raw_post(live_server, path, token, "Content-Length: 2000000\r\n", b"")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"body_too_large"' in answer
    chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"  # 64 KiB chunks, no Content-Length
    answer = await raw_post(live_server, path, token, "Transfer-Encoding: chunked\r\n", chunk * 20)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"body_too_large"' in answer
    assert (await queue.counts())["waiting"] == 0


async def test_payload_over_engine_limit_is_400(operator: httpx.AsyncClient, queue: Queue) -> None:
    data = "a" * (600 * 1024)  # under the body limit, over CONVEYOR_MAX_PAYLOAD_BYTES
    r = await operator.post(jobs(queue), json={"name": "x", "data": data})
    assert_error(r, 400, "invalid", "data")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "x", "options": {"priority": 10**12}}, "options.priority"),
        ({"name": "x", "options": {"priority": "high"}}, "options.priority"),
        ({"name": "x", "options": {"delay": -1}}, "options.delay"),
        ({"name": "x", "options": {"attempts": 0}}, "options.attempts"),
        ({"name": "x", "options": {"unknown": 1}}, "options.unknown"),
        ({"name": "x", "extra": 1}, "extra"),
        ({"name": ""}, "name"),
        ({"data": 1}, "name"),
        ({"name": "x", "options": {"meta": {"tenant": 1}}}, "options.meta.tenant"),
        ([1, 2], None),
    ],
)
async def test_schema_violations_are_422_naming_the_field(
    operator: httpx.AsyncClient, queue: Queue, body: object, field: str | None
) -> None:
    r = await operator.post(jobs(queue), json=body)
    assert r.status_code == 422, r.text
    if field is not None:
        assert r.json()["error"]["field"] == field


async def test_engine_checks_name_the_field(operator: httpx.AsyncClient, queue: Queue) -> None:
    r = await operator.post(jobs(queue), json={"name": "a:b"})
    assert_error(r, 400, "invalid", "name")
    r = await operator.post(jobs(queue), json={"name": "x", "options": {"job_id": "a:b"}})
    assert_error(r, 400, "invalid", "job_id")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/queues/..%2f..%2fetc/jobs",
        "/api/v1/queues/a%0d%0aSet-Cookie:x/jobs",
        "/api/v1/queues/a%00b/jobs",
        "/api/v1/queues/a%3Ab/jobs",
        "/api/v1/queues/%7Bx%7D/jobs",
        "/api/v1/queues/a*/jobs",
        "/api/v1/queues/" + "q" * 101 + "/jobs",
        "/api/v1/queues/a%20b",
        "/api/v1/queues/a%7F",
    ],
)
async def test_invalid_queue_names_in_paths(operator: httpx.AsyncClient, path: str) -> None:
    r = await operator.get(path)
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error"]["code"] in {"invalid", "not_found"}
    assert "set-cookie" not in r.headers


@pytest.mark.parametrize("job_id", ["a%3Ab", "a%0Ab", "a%00", "j" * 201, "..%2f..%2fx"])
async def test_invalid_job_ids_in_paths(
    operator: httpx.AsyncClient, queue: Queue, job_id: str
) -> None:
    await queue.add("x", None)
    r = await operator.get(f"{jobs(queue)}/{job_id}")
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error"]["code"] in {"invalid", "not_found", "job_not_found"}
    r = await operator.post(f"{jobs(queue)}/{job_id}/cancel")
    assert 400 <= r.status_code < 500, r.text


@pytest.mark.parametrize(
    "params, status, field",
    [
        ({"limit": -1}, 422, "limit"),
        ({"limit": 0}, 422, "limit"),
        ({"limit": 10**9}, 422, "limit"),
        ({"limit": "ten"}, 422, "limit"),
        ({"cursor": "abc"}, 400, "cursor"),
        ({"cursor": "-1"}, 400, "cursor"),
        ({"cursor": "1e3"}, 400, "cursor"),
        ({"cursor": "9" * 30}, 400, "cursor"),
        ({"cursor": "\uff11\uff12"}, 400, "cursor"),  # full-width digits
        ({"state": "exploded"}, 422, "state"),
        ({"since": "yesterday"}, 422, "since"),
        ({"search": "x" * 500}, 422, "search"),
    ],
)
async def test_bad_query_parameters(
    operator: httpx.AsyncClient, queue: Queue, params: dict[str, object], status: int, field: str
) -> None:
    await queue.add("x", None)
    r = await operator.get(jobs(queue), params=params)
    assert_error(r, status, r.json()["error"]["code"], field)


async def test_bad_cursors_elsewhere(admin: httpx.AsyncClient) -> None:
    assert_error(await admin.get("/api/v1/dead-letters", params={"cursor": "x"}), 400, "invalid")
    assert_error(await admin.get("/api/v1/audit", params={"cursor": "1-x"}), 400, "invalid")
    r = await admin.get("/api/v1/events", headers={"Last-Event-ID": "q=garbage"})
    assert_error(r, 400, "invalid", "Last-Event-ID")


async def test_unknown_endpoint_and_method(admin: httpx.AsyncClient) -> None:
    assert_error(await admin.get("/api/v1/nope"), 404, "not_found")
    assert_error(await admin.put("/api/v1/queues"), 405, "method_not_allowed")
