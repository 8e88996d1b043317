"""Keys the flow scripts receive for each queue a flow touches (``_tree.lua`` names them)."""

from __future__ import annotations

from typing import Any

from conveyor.keys import QueueKeys

#: Per queue, in the order of TREE_BLOCK in ``scripts/_tree.lua``.
TREE_BLOCK = (
    "waiting", "delayed", "dead", "marker", "events", "seq", "waiting-children",
    "job:spec", "job:state", "job:priority", "job:ready", "job:finished", "job:error",
)  # fmt: skip


def block(queue: str) -> list[str]:
    keys = QueueKeys(queue)
    return [keys.key(name) for name in TREE_BLOCK]


def flow_hash(queue: str, job_id: str) -> str:
    """A parent's pending-children count and its children's outcomes."""
    return QueueKeys(queue).key(f"flow:{job_id}")


def ancestors_of(spec: dict[str, Any]) -> list[list[str]]:
    """``[[queue, id, policy of the node below], ...]``, nearest first; empty if no parent."""
    flow = spec.get("flow") or {}
    up: list[list[str]] = flow.get("up") or []
    return up


def ancestor_call(
    queue: str, job_id: str, layout: list[str], up: list[list[str]]
) -> tuple[list[str], list[Any]]:
    """KEYS (the child's layout, then a block and a flow hash per ancestor) and the ARGV
    tail (child ref, first ancestor key index, count, then queue, id, policy each)."""
    keys = list(layout)
    tail: list[Any] = [f"{queue}:{job_id}", len(layout) + 1, len(up)]
    for ancestor_queue, ancestor_id, policy in up:
        keys += [*block(ancestor_queue), flow_hash(ancestor_queue, ancestor_id)]
        tail += [ancestor_queue, ancestor_id, policy]
    return keys, tail


def tree_complete_call(
    queue: str, job_id: str, layout: list[str], spec: dict[str, Any], head: list[Any]
) -> tuple[list[str], list[Any]]:
    """``head``: events maxlen, keep count, keep age ms, id, token, result JSON."""
    keys, tail = ancestor_call(queue, job_id, layout, ancestors_of(spec))
    return keys, head + tail


def tree_fail_call(
    queue: str, job_id: str, layout: list[str], spec: dict[str, Any], fail_args: list[Any]
) -> tuple[list[str], list[Any]]:
    """From ``fail.lua``'s ARGV to ``tree_fail.lua``'s (the final outcomes need no delay)."""
    maxlen, keep, age, jid, token, error, record, outcome, _delay, counted, reason = fail_args[:11]
    keys, tail = ancestor_call(queue, job_id, layout, ancestors_of(spec))
    head = [maxlen, keep, age, jid, token, error, record, outcome, counted, reason]
    return keys, head + tail


def tree_settle_call(
    queue: str, job_id: str, layout: list[str], spec: dict[str, Any], maxlen: int
) -> tuple[list[str], list[Any]]:
    keys, tail = ancestor_call(queue, job_id, layout, ancestors_of(spec))
    return keys, [maxlen, job_id, *tail]
