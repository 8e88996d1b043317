"""Live workers with their heartbeat age, queues, concurrency and running jobs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from conveyor.registry import live_workers
from conveyor.server.deps import Ctx, Viewer
from conveyor.server.views import worker_view

router = APIRouter(prefix="/workers", tags=["workers"])


@router.get("", name="list_workers")
async def list_workers(ctx: Ctx, who: Viewer) -> dict[str, Any]:
    workers = await live_workers(ctx.connection)
    visible = [w for w in workers if not who.queues or who.queues.intersection(w.queues)]
    return {"workers": [worker_view(w) for w in visible]}
