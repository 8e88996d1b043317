"""Adding flows atomically, reading their trees back, and a parent's view of its children."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from conveyor.codec import new_job_id, prepare
from conveyor.connection import Connection
from conveyor.errors import FlowConflict, InvalidFlow, JobNotFound
from conveyor.flows.keys import (
    ancestors_of,
    block,
    flow_hash,
    tree_cancel_call,
    tree_settle_call,
)
from conveyor.flows.model import FlowJob, Placed, walk
from conveyor.job import BUILTIN_DEFAULTS, JobOptions
from conveyor.keys import GLOBAL_QUEUES, QueueKeys
from conveyor.validation import check_job_id

FLOW_FIELDS = ("spec", "state", "result", "error")


@dataclass(frozen=True, slots=True)
class FlowNode:
    """A job of a flow as stored now, with its children (read back by :meth:`Flows.tree`)."""

    queue: str
    id: str
    name: str
    state: str
    result: Any = None
    error: dict[str, Any] | None = None
    on_failure: str | None = None
    children: list[FlowNode] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ChildResult:
    """How one child of a flow parent ended: ``state`` completed (with ``result``), dead or
    cancelled (with ``error``)."""

    queue: str
    id: str
    state: str
    result: Any = None
    error: dict[str, Any] | None = None


def _spec(index: int, placed: list[Placed], ids: list[str], kids: list[list[int]],
          max_bytes: int) -> str:  # fmt: skip
    """The job's spec JSON with its place in the flow: ancestors (nearest first, each with
    the failure policy of the node below it) and children."""
    job = placed[index].job
    options = (job.options or JobOptions()).with_id(ids[index])
    spec = prepare(job.name, job.data, options, BUILTIN_DEFAULTS, max_bytes).args[1]
    up: list[list[str]] = []
    below = index
    above = placed[index].parent
    while above is not None:
        up.append([placed[above].job.queue, ids[above], str(placed[below].job.on_failure)])
        below, above = above, placed[above].parent
    children = [[placed[i].job.queue, ids[i]] for i in kids[index]]
    flow = json.dumps({"up": up, "children": children}, separators=(",", ":"))
    return spec[:-1] + ',"flow":' + flow + "}"


def _children_of(placed: list[Placed]) -> list[list[int]]:
    kids: list[list[int]] = [[] for _ in placed]
    for index, p in enumerate(placed):
        if p.parent is not None:
            kids[p.parent].append(index)
    return kids


def _assign_ids(placed: list[Placed]) -> list[str]:
    ids: list[str] = []
    seen: dict[str, str] = {}
    for p in placed:
        job_id = (p.job.options.job_id if p.job.options else None) or new_job_id()
        if job_id in seen:
            raise InvalidFlow(f"{p.path}.options.job_id", f"{job_id!r} is also {seen[job_id]}")
        seen[job_id] = p.path
        ids.append(job_id)
    return ids


class Flows:
    """Add flows (parents run after their children, across queues) and read them back.

    >>> flows = Flows(conn)
    >>> await flows.add(FlowJob("email", "mail", children=[FlowJob("render", "pdf")]))
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._maxlen = connection.settings.events_maxlen

    async def add(self, root: FlowJob) -> FlowNode:
        """Validate the whole tree, then enqueue it in one script; returns its ids."""
        placed = walk(root)
        ids = _assign_ids(placed)
        max_bytes = self.connection.settings.max_payload_bytes
        queues = list(dict.fromkeys(p.job.queue for p in placed))
        keys = [k for queue in queues for k in block(queue)]
        width = len(block(queues[0]))
        args: list[Any] = [self._maxlen]
        kids = _children_of(placed)
        for index, p in enumerate(placed):
            children = len(kids[index])
            flow_index = 0
            if children:
                keys.append(flow_hash(p.job.queue, ids[index]))
                flow_index = len(keys)
            options = p.job.options or JobOptions()
            priority = options.priority or 0
            delay_ms = int((options.delay or 0) * 1000)
            args += [queues.index(p.job.queue) * width + 1, ids[index],
                     _spec(index, placed, ids, kids, max_bytes), priority, delay_ms, flow_index,
                     children]  # fmt: skip
        await self.connection.client.sadd(GLOBAL_QUEUES, *queues)
        reply = await self.connection.scripts("tree_add", keys, args)
        if reply[0] == 0:
            conflict = placed[int(reply[1])]
            raise FlowConflict(conflict.job.queue, ids[int(reply[1])])
        return _added(placed, ids, kids, 0)

    async def settle(self, queue: str, job_id: str) -> int:
        """Pass an ended child's outcome to its parent if the script that ended it did not
        (an operator's cancel, the stall check); harmless when already passed on.
        Returns -1 not ended, 0 recorded, 1 the parent became runnable, 2 it failed."""
        return await settle(self.connection, queue, job_id)

    async def chain(self, steps: Sequence[FlowJob]) -> FlowNode:
        """``A → B → C``: each step runs after the one before it and can read its result
        with ``ctx.children_results()``. Returns the last step (the flow's root)."""
        if not steps:
            raise InvalidFlow("steps", "a chain needs at least one step")
        node: FlowJob | None = None
        for i, step in enumerate(steps):
            if not isinstance(step, FlowJob):
                raise InvalidFlow(f"steps[{i}]", "must be a conveyor.FlowJob")
            if step.children:
                raise InvalidFlow(f"steps[{i}].children", "chain steps have no children")
            node = replace(step, children=[node] if node else [])
        assert node is not None
        return await self.add(node)

    async def tree(self, queue: str, job_id: str) -> FlowNode:
        """The flow below ``job_id`` with each job's current state, result and error."""
        check_job_id(job_id)
        node = await self._node(queue, job_id)
        if node is None:
            raise JobNotFound(queue, job_id)
        return node

    async def _node(self, queue: str, job_id: str) -> FlowNode | None:
        keys = QueueKeys(queue)
        pipe = self.connection.client.pipeline(transaction=False)
        for name in FLOW_FIELDS:
            pipe.hget(keys.job_field(name), job_id)
        spec_json, state, result, error = await pipe.execute()
        if spec_json is None or state is None:
            return None
        spec = json.loads(spec_json)
        flow = spec.get("flow") or {}
        children = []
        for child_queue, child_id in flow.get("children", []):
            child = await self._node(child_queue, child_id)
            if child is not None:
                children.append(child)
        up = flow.get("up") or []
        return FlowNode(
            queue, job_id, spec["name"], state, json.loads(result) if result else None,
            json.loads(error) if error else None, up[0][2] if up else None, children,
        )  # fmt: skip


def _added(placed: list[Placed], ids: list[str], kids: list[list[int]], index: int) -> FlowNode:
    p = placed[index]
    children = [_added(placed, ids, kids, i) for i in kids[index]]
    state = "waiting-children" if children else "waiting"
    return FlowNode(p.job.queue, ids[index], p.job.name, state,
                    on_failure=str(p.job.on_failure) if p.parent is not None else None,
                    children=children)  # fmt: skip


async def children_results(connection: Connection, queue: str, job_id: str) -> dict[str, Any]:
    """A parent's finished children by job id (children whose failure is ignored left out)."""
    raw = await connection.client.hgetall(flow_hash(queue, job_id))
    results: dict[str, ChildResult] = {}
    for ref, text in raw.items():
        if ref == "pending":
            continue
        child_queue, child_id = ref.split(":", 1)
        record = json.loads(text)
        if record.get("ignored"):
            continue
        result, error = record.get("result"), record.get("error")
        results[child_id] = ChildResult(
            child_queue, child_id, record["state"], json.loads(result) if result else None,
            json.loads(error) if error else None,
        )  # fmt: skip
    return results


async def settle(connection: Connection, queue: str, job_id: str) -> int:
    """See :meth:`Flows.settle`; 0 for a job that is not a flow child (or is missing)."""
    keys = QueueKeys(queue)
    spec_json = await connection.client.hget(keys.job_field("spec"), job_id)
    spec = json.loads(spec_json) if spec_json else {}
    if not ancestors_of(spec):
        return 0
    maxlen = connection.settings.events_maxlen
    script_keys, args = tree_settle_call(queue, job_id, keys.layout, spec, maxlen)
    return int(await connection.scripts("tree_settle", script_keys, args))


async def cancel_parent(connection: Connection, queue: str, job_id: str, head: list[Any]) -> bool:
    """Cancel a parent that waits for its children (``tree_cancel.lua``); False if it does
    not wait for children. ``head``: events maxlen, keep count, keep age ms, id, reason."""
    keys = QueueKeys(queue)
    spec_json = await connection.client.hget(keys.job_field("spec"), job_id)
    spec = json.loads(spec_json) if spec_json else {}
    script_keys, args = tree_cancel_call(queue, job_id, keys.layout, spec, head)
    code, _parent = await connection.scripts("tree_cancel", script_keys, args)
    return bool(code == 1)
