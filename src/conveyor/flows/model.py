"""What a flow is: a tree of jobs across queues, validated before anything is written."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from conveyor.errors import InvalidFlow, ValidationError
from conveyor.job import JobOptions
from conveyor.validation import check_queue_name

MAX_DEPTH = 16
MAX_JOBS = 1000


class ChildFailure(StrEnum):
    """What a child that ends dead or cancelled does to its parent."""

    FAIL = "fail"  # the parent goes to dead at once (and its own policy applies above it)
    IGNORE = "ignore"  # the parent runs when the others are done, without this child
    CONTINUE = "continue"  # the parent runs and sees this child's error in its results


@dataclass(eq=False)
class FlowJob:
    """One job of a flow; it runs after all of its ``children`` finished.

    ``on_failure`` is this job's policy toward its parent when it ends dead or cancelled.
    """

    name: str
    queue: str
    data: Any = None
    options: JobOptions | None = None
    children: list[FlowJob] = field(default_factory=list)
    on_failure: ChildFailure | str = ChildFailure.FAIL


@dataclass(frozen=True, slots=True)
class Placed:
    """A validated job of a flow, in pre-order, with the path naming it in errors."""

    job: FlowJob
    path: str
    parent: int | None  # index of the parent in the pre-order list
    depth: int


_UNSUPPORTED = ("dedup", "idempotency_key", "group", "deadline")


def _check_node(job: object, path: str) -> FlowJob:
    if not isinstance(job, FlowJob):
        raise InvalidFlow(path, f"must be a conveyor.FlowJob, got {type(job).__name__}")
    if not job.queue:
        raise InvalidFlow(f"{path}.queue", "is missing: every job of a flow names its queue")
    try:
        check_queue_name(job.queue)
    except ValidationError as exc:
        raise InvalidFlow(f"{path}.queue", exc.message) from None
    try:
        job.on_failure = ChildFailure(job.on_failure)
    except ValueError:
        raise InvalidFlow(f"{path}.on_failure", "must be one of fail, ignore, continue") from None
    options = job.options or JobOptions()
    if not isinstance(options, JobOptions):
        raise InvalidFlow(f"{path}.options", "must be a conveyor.JobOptions")
    for name in _UNSUPPORTED:
        if getattr(options, name, None) is not None:
            raise InvalidFlow(f"{path}.options.{name}", "is not supported on flow jobs")
    if not isinstance(job.children, list | tuple):
        raise InvalidFlow(f"{path}.children", "must be a list of FlowJob")
    return job


def walk(root: FlowJob) -> list[Placed]:
    """Every job in pre-order; refuses cycles, shared jobs, and trees too deep or too big."""
    placed: list[Placed] = []
    seen: dict[int, str] = {}
    stack: list[tuple[object, str, int | None, int, frozenset[int]]] = [
        (root, "flow", None, 0, frozenset())
    ]
    while stack:
        node, path, parent, depth, above = stack.pop()
        if id(node) in above:
            raise InvalidFlow(path, "makes a cycle: a job cannot be its own descendant")
        if id(node) in seen:
            raise InvalidFlow(path, f"is the same job as {seen[id(node)]}: a job has one parent")
        job = _check_node(node, path)
        if depth >= MAX_DEPTH:
            raise InvalidFlow(path, f"is deeper than {MAX_DEPTH} levels")
        seen[id(node)] = path
        placed.append(Placed(job, path, parent, depth))
        if len(placed) > MAX_JOBS:
            raise InvalidFlow("flow", f"has more than {MAX_JOBS} jobs")
        index = len(placed) - 1
        for i in reversed(range(len(job.children))):
            child = job.children[i]
            stack.append((child, f"{path}.children[{i}]", index, depth + 1, above | {id(node)}))
    return placed
