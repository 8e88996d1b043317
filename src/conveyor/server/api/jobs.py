"""Jobs of one queue: enqueue, list with filters, inspect, retry, cancel, promote,
remove, change priority."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from conveyor.errors import InvalidStateTransition, JobNotFound
from conveyor.job import Job, JobState
from conveyor.queue import Queue
from conveyor.server.api.common import Cursor, Limit, offset_of
from conveyor.server.body import StrictJSONRoute
from conveyor.server.deps import Ctx, Operator, Viewer, open_queue
from conveyor.server.errors import bad_request
from conveyor.server.reads import job_summaries
from conveyor.server.schemas import BulkIn, JobIn, PriorityIn, RetryIn
from conveyor.server.views import job_detail, job_summary, protector
from conveyor.validation import check_job_id

router = APIRouter(prefix="/queues/{queue}/jobs", tags=["jobs"], route_class=StrictJSONRoute)
SCAN_LIMIT = 5000  # ids examined per filtered page, so a search never walks a whole queue
BATCH = 250


@router.post("", status_code=201, name="enqueue")
async def enqueue(queue: str, body: JobIn, ctx: Ctx, who: Operator) -> dict[str, Any]:
    q = await open_queue(ctx, who, queue, must_exist=False)
    added = await q.add(body.name, body.data, body.options.to_options())
    return {"id": added.id, "created": added.created, "outcome": added.outcome}


@router.post("/bulk", status_code=201, name="enqueue_bulk")
async def enqueue_bulk(queue: str, body: BulkIn, ctx: Ctx, who: Operator) -> dict[str, Any]:
    q = await open_queue(ctx, who, queue, must_exist=False)
    items = [(j.name, j.data, j.options.to_options()) for j in body.jobs]
    added = await q.add_bulk(items)
    return {"jobs": [{"id": a.id, "created": a.created, "outcome": a.outcome} for a in added]}


Since = Annotated[
    float | None, Query(ge=0, le=10**11, description="created at or after (UNIX seconds)")
]
Until = Annotated[
    float | None, Query(ge=0, le=10**11, description="created at or before (UNIX seconds)")
]
Search = Annotated[
    str | None, Query(min_length=1, max_length=200, description="plain text in the job data")
]


class _Filter:
    def __init__(self, name: str | None, since: float | None, until: float | None,
                 search: str | None) -> None:  # fmt: skip
        self.name = name
        self.since = since
        self.until = until
        self.search = search.lower() if search else None

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.name, self.since, self.until, self.search))

    def matches(self, job: Job) -> bool:
        if self.name is not None and job.name != self.name:
            return False
        if self.since is not None and job.created_at < self.since:
            return False
        if self.until is not None and job.created_at > self.until:
            return False
        # Plain substring match on the stored JSON: glob characters mean themselves.
        text = json.dumps(job.data, ensure_ascii=False).lower()
        return self.search is None or self.search in text


async def _page(
    q: Queue, state: JobState, start: int, limit: int, where: _Filter
) -> tuple[list[Job], int | None]:
    found: list[Job] = []
    position = start
    scanned = 0
    while len(found) < limit and scanned < SCAN_LIMIT:
        batch = limit if not where.active else BATCH
        ids = await q.list_ids(state, offset=position, limit=batch)
        end = position + len(ids)
        for job in await job_summaries(q, ids):
            position += 1
            scanned += 1
            if job is not None and where.matches(job):
                found.append(job)
                if len(found) == limit:
                    break
        if len(ids) < batch and position == end:
            return found, None  # the set is exhausted: no further page
    return found, position


@router.get("", name="list_jobs")
async def list_jobs(
    queue: str, ctx: Ctx, who: Viewer, limit: Limit = 50, cursor: Cursor = None,
    state: JobState = JobState.WAITING,
    name: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    since: Since = None, until: Until = None, search: Search = None,
) -> dict[str, Any]:  # fmt: skip
    """One page of jobs in ``state``; filtered pages examine at most 5,000 jobs and
    return a cursor to continue from where they stopped."""
    q = await open_queue(ctx, who, queue)
    where = _Filter(name, since, until, search)
    if where.search is not None and not who.sees_payloads:
        raise bad_request(
            "search", "searching job data needs the operator role", "forbidden_search"
        )
    jobs, position = await _page(q, state, offset_of(cursor), limit, where)
    protect = protector(who, ctx.redactor)
    return {
        "jobs": [job_summary(job, who, ctx.redactor, protect) for job in jobs],
        "next_cursor": None if position is None else str(position),
    }


def _job_id(job_id: str) -> str:
    return check_job_id(job_id)


@router.get("/{job_id}", name="get_job")
async def get_job(queue: str, job_id: str, ctx: Ctx, who: Viewer) -> dict[str, Any]:
    q = await open_queue(ctx, who, queue, must_exist=False)  # a missing job is a 404
    return job_detail(await q.get_job(_job_id(job_id)), who, ctx.redactor)


@router.post("/{job_id}/retry", name="retry_job")
async def retry_job(
    queue: str, job_id: str, ctx: Ctx, who: Operator, body: RetryIn | None = None
) -> dict[str, Any]:
    """Run a dead or cancelled job again with fresh attempts; optionally with new data."""
    q = await open_queue(ctx, who, queue, must_exist=False)  # a missing job is a 404
    if body is not None and body.replace_data:
        await q.retry(_job_id(job_id), data=body.data)
    else:
        await q.retry(_job_id(job_id))
    return {"id": job_id, "state": "waiting"}


@router.post("/{job_id}/cancel", name="cancel_job")
async def cancel_job(queue: str, job_id: str, ctx: Ctx, who: Operator) -> dict[str, Any]:
    q = await open_queue(ctx, who, queue, must_exist=False)  # a missing job is a 404
    outcome = await q.cancel(_job_id(job_id), f"cancelled through the API by {who.name}")
    return {"id": job_id, "cancel": outcome}


@router.post("/{job_id}/promote", name="promote_job")
async def promote_job(queue: str, job_id: str, ctx: Ctx, who: Operator) -> dict[str, Any]:
    q = await open_queue(ctx, who, queue, must_exist=False)  # a missing job is a 404
    await q.promote(_job_id(job_id))
    return {"id": job_id, "state": "waiting"}


@router.post("/{job_id}/priority", name="change_priority")
async def change_priority(
    queue: str, job_id: str, body: PriorityIn, ctx: Ctx, who: Operator
) -> dict[str, Any]:
    q = await open_queue(ctx, who, queue, must_exist=False)  # a missing job is a 404
    try:
        await q.change_priority(_job_id(job_id), body.priority)
    except InvalidStateTransition as exc:
        if exc.state is None:  # the engine reports a missing job as a refused transition
            raise JobNotFound(q.name, job_id) from None
        raise
    return {"id": job_id, "priority": body.priority}


@router.delete("/{job_id}", status_code=204, name="remove_job")
async def remove_job(queue: str, job_id: str, ctx: Ctx, who: Operator) -> Response:
    """Delete a job that is not running (409 while it is active)."""
    q = await open_queue(ctx, who, queue, must_exist=False)  # a missing job is a 404
    await q.remove(_job_id(job_id))
    return Response(status_code=204)
