"""Flows across queues: atomic add, parents after children, failure policies, chains."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

import conveyor
from conveyor import FlowJob, Flows, JobOptions, Queue, UnrecoverableError, Worker
from conveyor.errors import FlowConflict, InvalidFlow
from tests.conftest import running, wait_for_state

ONE_TRY = JobOptions(attempts=1)


@pytest.fixture
def names(queue_name: str) -> tuple[str, str, str]:
    return f"{queue_name}-top", f"{queue_name}-mid", f"{queue_name}-leaf"


@pytest.fixture
def flows(conn: conveyor.Connection) -> Flows:
    return Flows(conn)


async def leaf(ctx: conveyor.JobContext, data: Any) -> Any:
    if data == "boom":
        raise UnrecoverableError("leaf failed")
    return data


async def summarise(ctx: conveyor.JobContext, data: Any) -> Any:
    results = await ctx.children_results()
    return {
        child_id: {"state": r.state, "result": r.result, "error": (r.error or {}).get("message")}
        for child_id, r in sorted(results.items())
    }


HANDLERS = {"leaf": leaf, "mid": summarise, "top": summarise}


@pytest.fixture
async def worker(conn: conveyor.Connection, names: tuple[str, str, str]) -> AsyncIterator[Worker]:
    async with running(Worker(conn, list(names), HANDLERS, concurrency=5)) as w:
        yield w


def three_levels(names: tuple[str, str, str], policy: str) -> FlowJob:
    top, mid, low = names
    leaves = [
        FlowJob("leaf", low, "ok", JobOptions(job_id="ok")),
        FlowJob("leaf", low, "boom", JobOptions(job_id="bad", attempts=1), on_failure=policy),
    ]
    middle = FlowJob("mid", mid, None, JobOptions(job_id="mid"), leaves, on_failure=policy)
    return FlowJob("top", top, None, JobOptions(job_id="top"), [middle])


async def test_a_flow_is_added_in_one_step_with_parents_waiting(
    flows: Flows, conn: conveyor.Connection, names: tuple[str, str, str]
) -> None:
    added = await flows.add(three_levels(names, "fail"))
    assert added.id == "top" and added.children[0].id == "mid"
    top, mid, low = (Queue(n, conn) for n in names)
    assert (await top.counts())["waiting-children"] == 1
    assert (await mid.counts())["waiting-children"] == 1
    assert await low.list_ids("waiting") == ["ok", "bad"]
    assert (await top.get_job("top")).state == "waiting-children"
    tree = await flows.tree(names[0], "top")
    states = [(tree.id, tree.state), (tree.children[0].id, tree.children[0].state)]
    states += [(c.id, c.state) for c in tree.children[0].children]
    assert states == [("top", "waiting-children"), ("mid", "waiting-children"),
                      ("ok", "waiting"), ("bad", "waiting")]  # fmt: skip
    assert tree.children[0].children[1].on_failure == "fail"


async def test_parents_run_after_children_and_read_their_results(
    flows: Flows, conn: conveyor.Connection, names: tuple[str, str, str], worker: Worker
) -> None:
    top, mid, low = names
    leaves = [FlowJob("leaf", low, i, JobOptions(job_id=f"l{i}")) for i in range(3)]
    middle_job = FlowJob("mid", mid, None, JobOptions(job_id="m"), leaves)
    await flows.add(FlowJob("top", top, None, JobOptions(job_id="t"), [middle_job]))
    done = await wait_for_state(Queue(top, conn), "t", "completed", "dead")
    assert done.state == "completed"
    middle = done.result["m"]
    assert middle["state"] == "completed"
    assert middle["result"] == {f"l{i}": {"state": "completed", "result": i, "error": None}
                                for i in range(3)}  # fmt: skip
    # Each parent started only after its last child finished.
    m_job = await Queue(mid, conn).get_job("m")
    leaf_jobs = [await Queue(low, conn).get_job(f"l{i}") for i in range(3)]
    last_leaf = max(j.finished_at or 0 for j in leaf_jobs)
    assert m_job.started_at is not None and m_job.started_at >= last_leaf
    tree = await flows.tree(top, "t")
    assert {c.state for c in tree.children[0].children} == {"completed"}


async def test_policy_fail_fails_every_parent_up_the_tree(
    flows: Flows, conn: conveyor.Connection, names: tuple[str, str, str], worker: Worker
) -> None:
    await flows.add(three_levels(names, "fail"))
    top = await wait_for_state(Queue(names[0], conn), "top", "dead", "completed")
    assert top.state == "dead" and top.error is not None
    assert top.error["type"] == "ChildFailed" and "mid" in top.error["message"]
    assert top.started_at is None  # it never ran
    tree = await flows.tree(names[0], "top")
    middle = tree.children[0]
    assert middle.state == "dead" and middle.error and "bad" in middle.error["message"]
    ok = await wait_for_state(Queue(names[2], conn), "ok", "completed")
    assert ok.state == "completed"  # siblings are not cancelled


async def test_policy_ignore_runs_the_parent_without_the_failed_child(
    flows: Flows, conn: conveyor.Connection, names: tuple[str, str, str], worker: Worker
) -> None:
    await flows.add(three_levels(names, "ignore"))
    top = await wait_for_state(Queue(names[0], conn), "top", "dead", "completed")
    assert top.state == "completed"
    assert top.result == {"mid": {"state": "completed", "error": None, "result": {
        "ok": {"state": "completed", "result": "ok", "error": None}}}}  # fmt: skip
    assert (await Queue(names[2], conn).get_job("bad")).state == "dead"


async def test_policy_continue_runs_the_parent_and_reports_the_failure(
    flows: Flows, conn: conveyor.Connection, names: tuple[str, str, str], worker: Worker
) -> None:
    await flows.add(three_levels(names, "continue"))
    top = await wait_for_state(Queue(names[0], conn), "top", "dead", "completed")
    assert top.state == "completed"
    seen = top.result["mid"]["result"]
    assert seen["ok"] == {"state": "completed", "result": "ok", "error": None}
    assert seen["bad"] == {"state": "dead", "result": None, "error": "leaf failed"}


async def test_chain_runs_steps_in_order_each_reading_the_last(
    flows: Flows, conn: conveyor.Connection, names: tuple[str, str, str]
) -> None:
    order: list[str] = []

    async def step(ctx: conveyor.JobContext, data: Any) -> Any:
        order.append(ctx.id)
        before = [r.result for r in (await ctx.children_results()).values()]
        return (before[0] if before else []) + [data]

    a, b, c = names
    root = await flows.chain([
        FlowJob("step", a, "pdf", JobOptions(job_id="pdf")),
        FlowJob("step", b, "email", JobOptions(job_id="email")),
        FlowJob("step", c, "audit", JobOptions(job_id="audit")),
    ])  # fmt: skip
    assert root.id == "audit" and root.children[0].id == "email"
    async with running(Worker(conn, list(names), {"step": step})):
        done = await wait_for_state(Queue(c, conn), "audit", "completed", "dead")
    assert order == ["pdf", "email", "audit"]
    assert done.result == ["pdf", "email", "audit"]


async def test_an_existing_id_refuses_the_whole_flow(
    flows: Flows, conn: conveyor.Connection, names: tuple[str, str, str]
) -> None:
    low = Queue(names[2], conn)
    await low.add("leaf", 1, JobOptions(job_id="bad"))
    with pytest.raises(FlowConflict) as caught:
        await flows.add(three_levels(names, "fail"))
    assert caught.value.job_id == "bad" and caught.value.queue == names[2]
    for name in names:
        counts = await Queue(name, conn).counts()
        assert sum(counts.values()) == (1 if name == names[2] else 0)
    assert not await conn.client.exists(Queue(names[0], conn).keys.key("flow:top"))


def test_bad_flows_are_typed_errors_naming_the_field() -> None:
    from conveyor.flows.model import walk

    a = FlowJob("a", "q")
    b = FlowJob("b", "q", children=[a])
    a.children.append(b)
    with pytest.raises(InvalidFlow) as caught:
        walk(b)
    assert caught.value.field == "flow.children[0].children[0]" and "cycle" in str(caught.value)
    shared = FlowJob("s", "q")
    with pytest.raises(InvalidFlow, match="one parent"):
        walk(FlowJob("r", "q", children=[shared, shared]))
    cases: list[tuple[FlowJob, str]] = [
        (FlowJob("r", "q", children=[FlowJob("c", "")]), "flow.children[0].queue"),
        (FlowJob("r", "q", children=[FlowJob("c", "bad:name")]), "flow.children[0].queue"),
        (FlowJob("r", "q", on_failure="maybe"), "flow.on_failure"),
        (FlowJob("r", "q", options=JobOptions(group="g")), "flow.options.group"),
        (FlowJob("r", "q", children=["x"]), "flow.children[0]"),  # type: ignore[list-item]
    ]
    for flow, field in cases:
        with pytest.raises(InvalidFlow) as caught:
            walk(flow)
        assert caught.value.field == field


async def test_duplicate_ids_and_empty_chains_are_refused(
    flows: Flows, conn: conveyor.Connection, names: tuple[str, str, str]
) -> None:
    same = JobOptions(job_id="x")
    with pytest.raises(InvalidFlow) as caught:
        await flows.add(FlowJob("r", names[0], options=same,
                                children=[FlowJob("c", names[1], options=same)]))  # fmt: skip
    assert caught.value.field == "flow.children[0].options.job_id"
    with pytest.raises(InvalidFlow):
        await flows.chain([])
    with pytest.raises(InvalidFlow) as caught:
        await flows.chain([FlowJob("a", names[0], children=[FlowJob("b", names[1])])])
    assert caught.value.field == "steps[0].children"
    assert sum((await Queue(names[0], conn).counts()).values()) == 0


async def add_parent_of_one(flows: Flows, names: tuple[str, str, str]) -> None:
    """Parent "p" in the top queue, waiting for child "c1" (policy continue) in the middle one."""
    await flows.add(FlowJob("top", names[0], None, JobOptions(job_id="p"), [
        FlowJob("leaf", names[1], 1, JobOptions(job_id="c1"), on_failure="continue"),
    ]))  # fmt: skip


async def test_a_child_cancelled_while_waiting_tells_its_parent(
    flows: Flows, conn: conveyor.Connection, names: tuple[str, str, str]
) -> None:
    top, mid, _ = names
    await add_parent_of_one(flows, names)
    assert await Queue(mid, conn).cancel("c1") == "cancelled"
    parent = await Queue(top, conn).get_job("p")
    assert parent.state == "waiting"
    assert (await flows.settle(mid, "c1")) == 0  # already passed on: nothing more happens
    assert (await Queue(top, conn).counts())["waiting"] == 1


async def test_settle_passes_on_a_child_the_stall_check_buried(
    flows: Flows, conn: conveyor.Connection, names: tuple[str, str, str]
) -> None:
    top, mid, _ = names
    await flows.add(FlowJob("top", top, None, JobOptions(job_id="p"),
                            [FlowJob("leaf", mid, 1, JobOptions(job_id="c1"))]))  # fmt: skip
    child = Queue(mid, conn)
    assert await flows.settle(mid, "c1") == -1  # still waiting: nothing to pass on
    keys = child.keys.layout
    await conn.scripts("fetch", keys, [1000, "w", 60_000, 1])
    await conn.client.zadd(child.keys.active, {"c1": 1}, xx=True)  # its worker died
    assert await conn.scripts("recover_stalled", keys, [1000, 0, 10, -1, -1]) == [[], ["c1"]]
    assert await flows.settle(mid, "c1") == 2  # policy fail: the parent fails
    parent = await Queue(top, conn).get_job("p")
    assert parent.state == "dead" and parent.error and parent.error["type"] == "ChildFailed"
    assert await flows.settle(mid, "c1") == 0
    assert await flows.settle(top, "p") == 0  # not a flow child


async def test_cancelling_a_waiting_parent_tells_its_own_parent(
    flows: Flows, conn: conveyor.Connection, names: tuple[str, str, str]
) -> None:
    await flows.add(three_levels(names, "continue"))
    top, mid, low = (Queue(n, conn) for n in names)
    assert await mid.cancel("mid", "not needed") == "cancelled"
    middle = await mid.get_job("mid")
    assert middle.state == "cancelled" and middle.error == {
        "type": "JobCancelled", "message": "not needed"}  # fmt: skip
    assert await conn.client.zcard(mid.keys.key("waiting-children")) == 0
    assert await mid.list_ids("cancelled") == ["mid"]
    assert (await top.get_job("top")).state == "waiting"  # policy continue: it may run
    assert await low.list_ids("waiting") == ["ok", "bad"]  # the children are left alone
    # The root has no parent; cancelling it is a plain cancel of a waiting-children job.
    await flows.add(FlowJob("top", names[0], None, JobOptions(job_id="root2"),
                            [FlowJob("leaf", names[2], 1, JobOptions(job_id="x"))]))  # fmt: skip
    assert await top.cancel("root2") == "cancelled"
    with pytest.raises(conveyor.InvalidStateTransition):
        await top.cancel("root2")


async def test_removing_an_unfinished_child_is_refused_and_changes_nothing(
    flows: Flows, conn: conveyor.Connection, names: tuple[str, str, str]
) -> None:
    top, mid, _ = names
    await add_parent_of_one(flows, names)
    child_queue = Queue(mid, conn)
    with pytest.raises(conveyor.InvalidStateTransition) as caught:
        await child_queue.remove("c1")
    assert "cancel it first" in str(caught.value) and caught.value.state == "waiting"
    assert (await child_queue.get_job("c1")).state == "waiting"
    # Once finished, the child may go: its parent has been told.
    assert await child_queue.cancel("c1") == "cancelled"
    await child_queue.remove("c1")
    assert (await Queue(top, conn).get_job("p")).state == "waiting"


async def test_removing_a_parent_that_waits_for_children_is_refused(
    flows: Flows, conn: conveyor.Connection, names: tuple[str, str, str]
) -> None:
    await flows.add(three_levels(names, "continue"))
    with pytest.raises(conveyor.InvalidStateTransition) as caught:
        await Queue(names[1], conn).remove("mid")
    assert caught.value.state == "waiting-children"
    top = Queue(names[0], conn)
    with pytest.raises(conveyor.InvalidStateTransition):  # the root waits for children too
        await top.remove("top")
    assert await top.cancel("top") == "cancelled"
    await top.remove("top")
    assert await conn.client.zcard(top.keys.key("waiting-children")) == 0
