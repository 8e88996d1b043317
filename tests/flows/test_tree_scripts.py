"""tree_complete and tree_fail driven directly: every return code and the key state."""

from __future__ import annotations

import json

import conveyor
from conveyor import FlowJob, Flows, JobOptions, Queue
from conveyor.flows.keys import flow_hash, tree_complete_call, tree_fail_call


async def lease(conn: conveyor.Connection, queue: Queue, job_id: str) -> tuple[str, dict]:  # type: ignore[type-arg]
    reply = await conn.scripts("fetch", queue.keys.layout, [1000, "w", 60_000, 1])
    for i in range(2, len(reply), 5):
        if reply[i] == job_id:
            return str(reply[i + 1]), json.loads(reply[i + 4])
    raise AssertionError(f"{job_id} not fetched")


async def add_family(conn: conveyor.Connection, parent_q: str, child_q: str, policy: str) -> None:
    await Flows(conn).add(FlowJob("p", parent_q, None, JobOptions(job_id="p"), [
        FlowJob("c", child_q, None, JobOptions(job_id="c1"), on_failure=policy),
        FlowJob("c", child_q, None, JobOptions(job_id="c2"), on_failure=policy),
    ]))  # fmt: skip


async def test_tree_complete_records_then_releases_the_parent(
    conn: conveyor.Connection, queue_name: str
) -> None:
    parent, child = Queue(f"{queue_name}-p", conn), Queue(f"{queue_name}-c", conn)
    await add_family(conn, parent.name, child.name, "fail")
    assert await conn.client.hget(flow_hash(parent.name, "p"), "pending") == "2"
    for job_id, expected in (("c1", [[1, 0]]), ("c2", [[1, 1]])):
        token, spec = await lease(conn, child, job_id)
        job = (job_id, token, json.dumps({"n": job_id}), spec)
        keys, args = tree_complete_call(child.keys.layout, child.name, [job], [1000, -1, -1])
        assert await conn.scripts("tree_complete", keys, args) == expected
        assert (await child.get_job(job_id)).state == "completed"
        # A second completion with the same (now stale) token is refused: nothing written.
        assert await conn.scripts("tree_complete", keys, args) == [[0, 0]]
    record = json.loads(await conn.client.hget(flow_hash(parent.name, "p"), f"{child.name}:c1"))
    assert record == {"state": "completed", "ignored": False, "result": '{"n": "c1"}'}
    assert await conn.client.hget(flow_hash(parent.name, "p"), "pending") == "0"
    assert await parent.list_ids("waiting") == ["p"]
    assert await conn.client.zcard(parent.keys.key("waiting-children")) == 0


async def test_tree_complete_takes_a_batch_sharing_ancestor_keys(
    conn: conveyor.Connection, queue_name: str
) -> None:
    parent, child = Queue(f"{queue_name}-p", conn), Queue(f"{queue_name}-c", conn)
    await add_family(conn, parent.name, child.name, "fail")
    jobs = []
    for job_id in ("c1", "c2"):
        token, spec = await lease(conn, child, job_id)
        jobs.append((job_id, token, "1", spec))
    jobs[0] = (*jobs[0][:1], "stale", *jobs[0][2:])
    keys, args = tree_complete_call(child.keys.layout, child.name, jobs, [1000, -1, -1])
    assert len(keys) == len(set(keys))  # the parent's block and hash appear once
    assert await conn.scripts("tree_complete", keys, args) == [[0, 0], [1, 0]]
    assert (await child.get_job("c1")).state == "active"
    assert await conn.client.hget(flow_hash(parent.name, "p"), "pending") == "1"


async def fail_child(conn: conveyor.Connection, child: Queue, job_id: str) -> list[int]:
    token, spec = await lease(conn, child, job_id)
    error = json.dumps({"type": "Boom", "message": "no"})
    record = json.dumps({"outcome": "dead"})
    fail_args = [1000, -1, -1, job_id, token, error, record, "dead", 0, 1, "no", 0]
    keys, args = tree_fail_call(child.name, job_id, child.keys.layout, spec, fail_args)
    reply: list[int] = await conn.scripts("tree_fail", keys, args)
    return reply


async def test_tree_fail_under_fail_buries_the_parent(
    conn: conveyor.Connection, queue_name: str
) -> None:
    parent, child = Queue(f"{queue_name}-p", conn), Queue(f"{queue_name}-c", conn)
    await add_family(conn, parent.name, child.name, "fail")
    assert await fail_child(conn, child, "c1") == [1, 2]
    job = await child.get_job("c1")
    assert job.state == "dead" and job.attempts_made == 1
    p = await parent.get_job("p")
    assert p.state == "dead" and p.error is not None and "c1" in p.error["message"]
    assert await parent.list_ids("dead") == ["p"]
    # The sibling's later outcome is recorded but changes nothing.
    assert await fail_child(conn, child, "c2") == [1, 0]
    assert (await parent.get_job("p")).state == "dead"


async def test_tree_fail_under_continue_and_ignore_counts_the_child_done(
    conn: conveyor.Connection, queue_name: str
) -> None:
    for policy in ("continue", "ignore"):
        parent = Queue(f"{queue_name}-{policy}-p", conn)
        child = Queue(f"{queue_name}-{policy}-c", conn)
        await add_family(conn, parent.name, child.name, policy)
        assert await fail_child(conn, child, "c1") == [1, 0]
        assert await fail_child(conn, child, "c2") == [1, 1]
        assert await parent.list_ids("waiting") == ["p"]
        raw = await conn.client.hget(flow_hash(parent.name, "p"), f"{child.name}:c1")
        assert json.loads(raw)["ignored"] is (policy == "ignore")
