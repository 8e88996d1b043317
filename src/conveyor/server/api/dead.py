"""Dead letters across queues: list, requeue one (optionally with edited data) or by
filter, purge."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from conveyor.job import JobState
from conveyor.queue import DeadFilter
from conveyor.server.api.common import Cursor, Limit
from conveyor.server.api.queues import requeue_dead, visible_queues
from conveyor.server.body import StrictJSONRoute
from conveyor.server.deps import Admin, Ctx, Operator, Viewer, open_queue
from conveyor.server.errors import ApiError, bad_request
from conveyor.server.schemas import DeadFilterIn, RetryIn
from conveyor.server.views import job_summary
from conveyor.validation import check_job_id

router = APIRouter(prefix="/dead-letters", tags=["dead letters"], route_class=StrictJSONRoute)


def _parse_cursor(cursor: str | None, names: list[str]) -> tuple[int, int]:
    """Cursor ``<queue index>.<offset>`` over the sorted list of visible queues."""
    if not cursor:
        return 0, 0
    index, dot, offset = cursor.partition(".")
    if not dot or not index.isdigit() or not offset.isdigit() or len(cursor) > 30:
        raise bad_request("cursor", "must be a next_cursor returned by a previous page")
    return int(index), int(offset)


@router.get("", name="list_dead_letters")
async def list_dead(
    ctx: Ctx, who: Viewer, queue: str | None = None, limit: Limit = 50, cursor: Cursor = None
) -> dict[str, Any]:
    """Dead jobs, newest first within each queue, queue by queue."""
    names = [(await open_queue(ctx, who, queue)).name] if queue else await visible_queues(ctx, who)
    index, offset = _parse_cursor(cursor, names)
    found: list[dict[str, Any]] = []
    while index < len(names) and len(found) < limit:
        q = ctx.queue(names[index])
        jobs = await q.list_jobs(JobState.DEAD, offset=offset, limit=limit - len(found))
        found.extend(job_summary(job, who, ctx.redactor) for job in jobs)
        if len(found) < limit:
            index, offset = index + 1, 0
        else:
            offset += len(jobs)
    more = index < len(names)
    return {"jobs": found, "next_cursor": f"{index}.{offset}" if more else None}


@router.post("/{queue}/requeue", name="requeue_dead")
async def requeue_by_filter(
    queue: str, ctx: Ctx, who: Operator, body: DeadFilterIn | None = None
) -> dict[str, Any]:
    return await requeue_dead(ctx, who, queue, body)


@router.post("/{queue}/purge", name="purge_dead")
async def purge(
    queue: str, ctx: Ctx, who: Admin, body: DeadFilterIn | None = None
) -> dict[str, Any]:
    q = await open_queue(ctx, who, queue)
    body = body or DeadFilterIn()
    where = DeadFilter(body.name, body.error_type, body.since, body.until)
    return {"purged": await q.purge_dead(where, limit=body.limit)}


@router.post("/{queue}/{job_id}/requeue", name="requeue_dead_job")
async def requeue_one(
    queue: str, job_id: str, ctx: Ctx, who: Operator, body: RetryIn | None = None
) -> dict[str, Any]:
    """Requeue one dead job; with ``replace_data`` its data is edited first."""
    q = await open_queue(ctx, who, queue)
    check_job_id(job_id)
    job = await q.get_job(job_id)
    if job.state != JobState.DEAD:
        raise ApiError(409, "invalid_state", f"job {job_id!r} is {job.state}, not dead", "state")
    if body is not None and body.replace_data:
        await q.retry(job_id, data=body.data)
    else:
        await q.retry(job_id)
    return {"id": job_id, "state": "waiting"}
