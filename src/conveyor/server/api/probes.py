"""Kubernetes probes, without authentication: ``/healthz`` (the process answers) and
``/readyz`` (Redis reachable, scripts loaded, ``noeviction``, a live worker for every
queue that has work)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from redis.exceptions import ResponseError

from conveyor.registry import live_workers, queue_names
from conveyor.scripts import library
from conveyor.server.context import ServerContext
from conveyor.server.deps import Ctx
from conveyor.server.errors import REDIS_DOWN

router = APIRouter(tags=["health"])


@router.get("/healthz", name="healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _scripts_loaded(ctx: ServerContext) -> bool:
    name, _ = library()
    if not await ctx.connection.client.function_list(library=name):
        # A fresh or restarted Redis: load now rather than on first use.
        await ctx.connection.scripts.load()
    return True


async def _eviction_policy(ctx: ServerContext) -> str | None:
    try:
        config = await ctx.connection.client.config_get("maxmemory-policy")
    except ResponseError:
        return None  # CONFIG is disabled on some managed Redis services
    policy: str | None = config.get("maxmemory-policy")
    return policy


async def _checks(ctx: ServerContext) -> tuple[bool, dict[str, Any]]:
    await ctx.connection.client.ping()
    checks: dict[str, Any] = {"redis": "ok", "scripts": await _scripts_loaded(ctx)}
    policy = await _eviction_policy(ctx)
    checks["eviction_policy"] = policy or "unknown"
    ready = policy in (None, "noeviction")
    workers = await live_workers(ctx.connection)
    served = {q for w in workers for q in w.queues}
    unserved = []
    for name in await queue_names(ctx.connection):
        queue = ctx.queue(name)
        if name in served or await queue.is_paused():
            continue
        counts = await queue.counts()
        if counts["waiting"] + counts["active"] > 0:
            unserved.append(name)
    checks["queues_without_worker"] = unserved
    return ready and not unserved, checks


@router.get("/readyz", name="readyz")
async def readyz(ctx: Ctx) -> JSONResponse:
    try:
        ready, checks = await _checks(ctx)
    except REDIS_DOWN:
        body = {"status": "unavailable", "checks": {"redis": "unreachable"}}
        return JSONResponse(body, status_code=503, headers={"Retry-After": "2"})
    status = "ready" if ready else "not_ready"
    return JSONResponse({"status": status, "checks": checks}, status_code=200 if ready else 503)
