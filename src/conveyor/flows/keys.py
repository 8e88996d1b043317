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


class KeyPlan:
    """KEYS for a flow script: a queue layout first, then each ancestor's queue block and
    flow hash, each key once; :meth:`ancestors` gives the ARGV that points at them."""

    def __init__(self, layout: list[str]) -> None:
        self.keys = list(layout)
        self._blocks: dict[str, int] = {}
        self._hashes: dict[str, int] = {}

    def _block(self, queue: str) -> int:
        if queue not in self._blocks:
            self._blocks[queue] = len(self.keys) + 1
            self.keys += block(queue)
        return self._blocks[queue]

    def _hash(self, queue: str, job_id: str) -> int:
        key = flow_hash(queue, job_id)
        if key not in self._hashes:
            self.keys.append(key)
            self._hashes[key] = len(self.keys)
        return self._hashes[key]

    def ancestors(self, up: list[list[str]]) -> list[Any]:
        """Count, then per ancestor: block index, flow hash index, queue, id, policy."""
        args: list[Any] = [len(up)]
        for queue, job_id, policy in up:
            args += [self._block(queue), self._hash(queue, job_id), queue, job_id, policy]
        return args


def tree_complete_call(
    layout: list[str], queue: str, jobs: list[tuple[str, str, str, dict[str, Any]]], head: list[Any]
) -> tuple[list[str], list[Any]]:
    """``jobs``: (id, token, result JSON, spec) each; ``head``: events maxlen, keep count,
    keep age ms."""
    plan = KeyPlan(layout)
    args: list[Any] = [*head, len(jobs)]
    for job_id, token, result, spec in jobs:
        args += [job_id, token, result, f"{queue}:{job_id}", *plan.ancestors(ancestors_of(spec))]
    return plan.keys, args


def tree_fail_call(
    queue: str, job_id: str, layout: list[str], spec: dict[str, Any], fail_args: list[Any]
) -> tuple[list[str], list[Any]]:
    """From ``fail.lua``'s ARGV to ``tree_fail.lua``'s (the final outcomes need no delay)."""
    maxlen, keep, age, jid, token, error, record, outcome, _delay, counted, reason = fail_args[:11]
    plan = KeyPlan(layout)
    head = [maxlen, keep, age, jid, token, error, record, outcome, counted, reason]
    return plan.keys, [*head, f"{queue}:{job_id}", *plan.ancestors(ancestors_of(spec))]


def tree_settle_call(
    queue: str, job_id: str, layout: list[str], spec: dict[str, Any], maxlen: int
) -> tuple[list[str], list[Any]]:
    plan = KeyPlan(layout)
    return plan.keys, [maxlen, job_id, f"{queue}:{job_id}", *plan.ancestors(ancestors_of(spec))]


def tree_cancel_call(
    queue: str, job_id: str, layout: list[str], spec: dict[str, Any], head: list[Any]
) -> tuple[list[str], list[Any]]:
    """``head``: events maxlen, keep count, keep age ms, id, reason."""
    plan = KeyPlan([*layout, QueueKeys(queue).key("waiting-children")])
    tail = [len(layout) + 1, f"{queue}:{job_id}", *plan.ancestors(ancestors_of(spec))]
    return plan.keys, [*head, *tail]
