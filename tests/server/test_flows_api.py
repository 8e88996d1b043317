"""Flows through the API: added in one call, run by real workers, read back as a tree."""

from __future__ import annotations

from typing import Any

import httpx

import conveyor
from conveyor import Queue, Worker
from conveyor.server import KeyStore
from tests.conftest import running, wait_for_state
from tests.server.conftest import LiveServer, assert_error, client_for


async def part(ctx: conveyor.JobContext, data: Any) -> Any:
    return {"part": data, "secret": "s3"}


async def assemble(ctx: conveyor.JobContext, data: Any) -> Any:
    results = await ctx.children_results()
    return sorted(r.result["part"] for r in results.values())


def flow_body(top: str, low: str) -> dict[str, Any]:
    return {
        "name": "assemble", "queue": top, "options": {"job_id": "order-9"},
        "children": [
            {"name": "part", "queue": low, "data": "a", "options": {"job_id": "a"}},
            {"name": "part", "queue": low, "data": "b", "options": {"job_id": "b"},
             "on_failure": "continue"},
        ],
    }  # fmt: skip


async def test_a_flow_added_through_the_api_runs_children_first(
    operator: httpx.AsyncClient, conn: conveyor.Connection, queue_name: str
) -> None:
    top, low = f"{queue_name}-top", f"{queue_name}-low"
    r = await operator.post("/api/v1/flows", json=flow_body(top, low))
    assert r.status_code == 201, r.text
    tree = r.json()
    assert (tree["id"], tree["state"]) == ("order-9", "waiting-children")
    assert [(c["id"], c["state"], c["on_failure"]) for c in tree["children"]] == [
        ("a", "waiting", "fail"), ("b", "waiting", "continue"),
    ]  # fmt: skip
    worker = Worker(conn, [top, low], {"part": part, "assemble": assemble}, concurrency=4)
    async with running(worker):
        await wait_for_state(Queue(top, conn), "order-9", "completed")
    shown = (await operator.get(f"/api/v1/queues/{top}/jobs/order-9/flow")).json()
    assert shown["state"] == "completed" and shown["result"] == ["a", "b"]
    assert [c["state"] for c in shown["children"]] == ["completed", "completed"]
    again = await operator.post("/api/v1/flows", json=flow_body(top, low))
    assert_error(again, 409, "flow_conflict", "job_id")


async def test_flow_input_errors_name_the_job_and_write_nothing(
    operator: httpx.AsyncClient, conn: conveyor.Connection, queue_name: str
) -> None:
    body = flow_body(f"{queue_name}-top", f"{queue_name}-low")
    body["children"][1]["options"] = {"job_id": "a"}  # the same id twice in one flow
    r = await operator.post("/api/v1/flows", json=body)
    assert_error(r, 400, "invalid", "flow.children[1].options.job_id")
    body["children"][1] = {"name": "part", "queue": "bad:name"}
    r = await operator.post("/api/v1/flows", json=body)
    assert r.status_code == 400 and r.json()["error"]["field"].endswith("queue"), r.text
    body["children"][1] = {"name": "part", "queue": f"{queue_name}-low", "on_failure": "retry"}
    r = await operator.post("/api/v1/flows", json=body)
    assert r.status_code == 422 and r.json()["error"]["field"] == "children.1.on_failure"
    assert (await Queue(f"{queue_name}-low", conn).counts())["waiting"] == 0


async def test_a_restricted_key_adds_flows_only_in_its_queues_and_sees_only_their_results(
    live_server: LiveServer, operator: httpx.AsyncClient, conn: conveyor.Connection,
    queue_name: str,
) -> None:  # fmt: skip
    top, low = f"{queue_name}-top", f"{queue_name}-low"
    _, token = await KeyStore(conn).create("tenant", "operator", [top])
    async with client_for(live_server, token) as tenant:
        r = await tenant.post("/api/v1/flows", json=flow_body(top, low))
        assert_error(r, 403, "forbidden_queue", "queue")
        assert (await Queue(top, conn).counts())["waiting-children"] == 0
        assert (await operator.post("/api/v1/flows", json=flow_body(top, low))).status_code == 201
        worker = Worker(conn, [top, low], {"part": part, "assemble": assemble}, concurrency=4)
        async with running(worker):
            await wait_for_state(Queue(top, conn), "order-9", "completed")
        shown = (await tenant.get(f"/api/v1/queues/{top}/jobs/order-9/flow")).json()
        assert shown["result"] == ["a", "b"]
        assert [(c["state"], c["result"]) for c in shown["children"]] == [
            ("completed", None), ("completed", None),
        ]  # fmt: skip
