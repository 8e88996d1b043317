"""Flows: a parent job that runs after its children (across queues), added in one step,
and read back as a tree with each job's state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter

from conveyor.errors import FlowConflict
from conveyor.flows import FlowNode, Flows
from conveyor.server.auth import Principal
from conveyor.server.body import StrictJSONRoute
from conveyor.server.deps import Ctx, Operator, Viewer, open_queue
from conveyor.server.errors import ApiError
from conveyor.server.schemas import FlowJobIn
from conveyor.server.views import protector
from conveyor.validation import check_job_id

router = APIRouter(tags=["flows"], route_class=StrictJSONRoute)


@router.post("/flows", status_code=201, name="enqueue_flow")
async def enqueue_flow(body: FlowJobIn, ctx: Ctx, who: Operator) -> dict[str, Any]:
    for queue in sorted(body.queues()):  # a restricted key may only use its own queues
        await open_queue(ctx, who, queue, must_exist=False)
    try:
        root = await Flows(ctx.connection).add(body.to_flow_job())
    except FlowConflict as exc:
        raise ApiError(409, "flow_conflict", str(exc), "job_id") from None
    return _tree(root, who, lambda value: value)


@router.get("/queues/{queue}/jobs/{job_id}/flow", name="get_flow")
async def get_flow(queue: str, job_id: str, ctx: Ctx, who: Viewer) -> dict[str, Any]:
    await open_queue(ctx, who, queue)
    check_job_id(job_id)
    node = await Flows(ctx.connection).tree(queue, job_id)
    return _tree(node, who, protector(who, ctx.redactor))


def _tree(node: FlowNode, who: Principal, protect: Callable[[Any], Any]) -> dict[str, Any]:
    """The node and its children; results and errors only from queues the key may see."""
    visible = who.can_see(node.queue)
    return {
        "queue": node.queue, "id": node.id, "name": node.name, "state": node.state,
        "result": protect(node.result) if visible else None,
        "error": protect(node.error) if visible else None,
        "on_failure": node.on_failure,
        "children": [_tree(child, who, protect) for child in node.children],
    }  # fmt: skip
