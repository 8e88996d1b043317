"""Schedules (issue 3's scheduler): list with next fire times (viewer); upsert, pause,
resume, run now and remove (admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from conveyor.scheduler import Schedule, ScheduleInfo, Schedules
from conveyor.scheduler.store import SCHEDULED_QUEUES
from conveyor.server.auth import Principal
from conveyor.server.body import StrictJSONRoute
from conveyor.server.context import ServerContext
from conveyor.server.deps import Admin, Ctx, Viewer, open_queue
from conveyor.server.schemas import MAX_SECONDS
from conveyor.server.views import protector

router = APIRouter(tags=["schedules"], route_class=StrictJSONRoute)
PREFIX = "/queues/{queue}/schedules"


class ScheduleIn(BaseModel):
    """The schedule's id comes from the path; dates are ISO 8601 (naive ones are in ``tz``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    job: str = Field(min_length=1, max_length=200)
    data: Any = None
    cron: str | None = Field(default=None, min_length=1, max_length=200)
    every: float | None = Field(default=None, gt=0, le=MAX_SECONDS)
    tz: str = Field(default="UTC", min_length=1, max_length=64)
    start: datetime | None = None
    end: datetime | None = None
    max_runs: int | None = Field(default=None, ge=1, le=10**12)
    catch_up: Literal["skip", "once", "all"] = "skip"
    catch_up_limit: int = Field(default=10, ge=1, le=1000)
    grace: float = Field(default=60.0, ge=0, le=MAX_SECONDS)
    priority: int | None = Field(default=None, ge=-1000, le=1000)
    attempts: int | None = Field(default=None, ge=1, le=1000)
    timeout: float | None = Field(default=None, gt=0, le=MAX_SECONDS)
    meta: dict[str, str] = Field(default_factory=dict, max_length=50)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def schedule_view(
    info: ScheduleInfo, queue: str, who: Principal, ctx: ServerContext
) -> dict[str, Any]:
    s = info.schedule
    return {
        "id": s.id, "queue": queue, "job": s.job, "data": protector(who, ctx.redactor)(s.data),
        "cron": s.cron, "every": s.every, "tz": s.tz, "start": _iso(s.start), "end": _iso(s.end),
        "max_runs": s.max_runs, "catch_up": str(s.catch_up), "priority": s.priority,
        "next_fire": _iso(info.next_fire), "last_fire": _iso(info.last_fire),
        "runs": info.runs, "paused": info.paused,
    }  # fmt: skip


async def _store(ctx: ServerContext, who: Principal, queue: str) -> Schedules:
    q = await open_queue(ctx, who, queue, must_exist=False)
    return Schedules(ctx.connection, q.name)


@router.get("/schedules", name="list_all_schedules")
async def list_all(ctx: Ctx, who: Viewer) -> dict[str, Any]:
    """Every schedule of every queue the key may see, soonest first within a queue."""
    names = sorted(await ctx.connection.client.smembers(SCHEDULED_QUEUES))
    out: list[dict[str, Any]] = []
    for name in names:
        if who.can_see(name):
            infos = await Schedules(ctx.connection, name).list()
            out.extend(schedule_view(i, name, who, ctx) for i in infos)
    return {"schedules": out}


@router.get(PREFIX, name="list_schedules")
async def list_schedules(queue: str, ctx: Ctx, who: Viewer) -> dict[str, Any]:
    store = await _store(ctx, who, queue)
    return {"schedules": [schedule_view(i, store.queue, who, ctx) for i in await store.list()]}


@router.get(PREFIX + "/{schedule_id}", name="get_schedule")
async def get_schedule(queue: str, schedule_id: str, ctx: Ctx, who: Viewer) -> dict[str, Any]:
    store = await _store(ctx, who, queue)
    return schedule_view(await store.get(schedule_id), store.queue, who, ctx)


@router.put(PREFIX + "/{schedule_id}", name="upsert_schedule")
async def upsert(
    queue: str, schedule_id: str, body: ScheduleIn, ctx: Ctx, who: Admin
) -> dict[str, Any]:
    """Create or replace a schedule; answers ``created``, ``updated`` or ``unchanged``."""
    store = await _store(ctx, who, queue)
    schedule = Schedule(id=schedule_id, **body.model_dump())
    outcome = await store.upsert(schedule)
    info = await store.get(schedule_id)
    return {"result": outcome, "schedule": schedule_view(info, store.queue, who, ctx)}


@router.post(PREFIX + "/{schedule_id}/pause", name="pause_schedule")
async def pause(queue: str, schedule_id: str, ctx: Ctx, who: Admin) -> dict[str, Any]:
    store = await _store(ctx, who, queue)
    await store.pause(schedule_id)
    return {"id": schedule_id, "paused": True}


@router.post(PREFIX + "/{schedule_id}/resume", name="resume_schedule")
async def resume(queue: str, schedule_id: str, ctx: Ctx, who: Admin) -> dict[str, Any]:
    store = await _store(ctx, who, queue)
    await store.resume(schedule_id)
    return {"id": schedule_id, "paused": False}


@router.post(PREFIX + "/{schedule_id}/run", name="run_schedule")
async def run_now(queue: str, schedule_id: str, ctx: Ctx, who: Admin) -> dict[str, Any]:
    """Enqueue one job of the schedule now; its fire times are not affected."""
    store = await _store(ctx, who, queue)
    added = await store.run_now(schedule_id)
    return {"job_id": added.id, "created": added.created}


@router.delete(PREFIX + "/{schedule_id}", status_code=204, name="remove_schedule")
async def remove(queue: str, schedule_id: str, ctx: Ctx, who: Admin) -> Response:
    store = await _store(ctx, who, queue)
    await store.remove(schedule_id)
    return Response(status_code=204)
