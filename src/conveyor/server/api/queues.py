"""Queues: list with counts, rates and workers; detail and health; pause, resume,
clean, retry all dead, promote all delayed."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter

from conveyor.queue import DeadFilter, Queue
from conveyor.registry import WorkerInfo, live_workers, queue_names
from conveyor.server import health
from conveyor.server.auth import Principal
from conveyor.server.body import StrictJSONRoute
from conveyor.server.context import ServerContext
from conveyor.server.deps import Admin, Ctx, Operator, Viewer, open_queue
from conveyor.server.schemas import CleanIn, DeadFilterIn

router = APIRouter(prefix="/queues", tags=["queues"], route_class=StrictJSONRoute)
PARALLEL_QUEUES = 16  # queues read at once: round trips overlap, the pool is not drained


async def queue_view(ctx: ServerContext, q: Queue, workers: list[WorkerInfo]) -> dict[str, Any]:
    thresholds = ctx.settings.thresholds(q.name)
    signals = await health.collect(q, workers, thresholds.window_seconds)
    verdict = health.judge(signals, thresholds)
    return {
        "name": q.name, "counts": signals.counts, "paused": signals.paused,
        "workers": signals.workers, "rates": signals.as_dict(),
        "health": {"status": verdict.status, "reasons": verdict.reasons},
    }  # fmt: skip


async def visible_queues(ctx: ServerContext, who: Principal) -> list[str]:
    return [name for name in await queue_names(ctx.connection) if who.can_see(name)]


@router.get("", name="list_queues")
async def list_queues(ctx: Ctx, who: Viewer) -> dict[str, Any]:
    workers = await live_workers(ctx.connection)
    names = await visible_queues(ctx, who)
    gate = asyncio.Semaphore(PARALLEL_QUEUES)

    async def view(name: str) -> dict[str, Any]:
        async with gate:
            return await queue_view(ctx, ctx.queue(name), workers)

    return {"queues": list(await asyncio.gather(*(view(n) for n in names)))}


@router.get("/{queue}", name="get_queue")
async def get_queue(queue: str, ctx: Ctx, who: Viewer) -> dict[str, Any]:
    q = await open_queue(ctx, who, queue)
    return await queue_view(ctx, q, await live_workers(ctx.connection))


@router.get("/{queue}/health", name="queue_health")
async def queue_health(queue: str, ctx: Ctx, who: Viewer) -> dict[str, Any]:
    q = await open_queue(ctx, who, queue)
    view = await queue_view(ctx, q, await live_workers(ctx.connection))
    return {"queue": q.name, **view["health"], "counts": view["counts"], "rates": view["rates"]}


@router.post("/{queue}/pause", name="pause_queue")
async def pause(queue: str, ctx: Ctx, who: Operator) -> dict[str, Any]:
    q = await open_queue(ctx, who, queue)
    await q.pause()
    return {"name": q.name, "paused": True}


@router.post("/{queue}/resume", name="resume_queue")
async def resume(queue: str, ctx: Ctx, who: Operator) -> dict[str, Any]:
    q = await open_queue(ctx, who, queue)
    await q.resume()
    return {"name": q.name, "paused": False}


@router.post("/{queue}/clean", name="clean_queue")
async def clean(queue: str, body: CleanIn, ctx: Ctx, who: Admin) -> dict[str, Any]:
    """Delete finished jobs older than ``older_than`` seconds."""
    q = await open_queue(ctx, who, queue)
    removed = await q.clean(body.state, older_than=body.older_than, limit=body.limit)
    return {"removed": removed}


async def requeue_dead(
    ctx: ServerContext, who: Principal, queue: str, body: DeadFilterIn | None
) -> dict[str, Any]:
    q = await open_queue(ctx, who, queue)
    body = body or DeadFilterIn()
    where = DeadFilter(body.name, body.error_type, body.since, body.until)
    return {"requeued": await q.requeue_dead(where, limit=body.limit)}


@router.post("/{queue}/retry-dead", name="retry_dead")
async def retry_dead(
    queue: str, ctx: Ctx, who: Operator, body: DeadFilterIn | None = None
) -> dict[str, Any]:
    """Requeue every dead job matching the filter (all when no body)."""
    return await requeue_dead(ctx, who, queue, body)


@router.post("/{queue}/promote-all", name="promote_all")
async def promote_all(queue: str, ctx: Ctx, who: Operator) -> dict[str, Any]:
    q = await open_queue(ctx, who, queue)
    return {"promoted": await q.promote_all()}
