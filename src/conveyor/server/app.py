"""The application factory of the operations server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from conveyor import __version__
from conveyor.config import Settings, load_settings
from conveyor.connection import Connection
from conveyor.embedded import EmbeddedRedis
from conveyor.server import errors
from conveyor.server.api import (
    audit,
    dead,
    events,
    flows,
    jobs,
    keys,
    metrics,
    probes,
    queues,
    schedules,
    workers,
)  # fmt: skip
from conveyor.server.body import BodyLimit
from conveyor.server.context import ServerContext
from conveyor.server.middleware import AuditMiddleware, SecurityHeaders
from conveyor.server.settings import ServerSettings, load_server_settings

API_PREFIX = "/api/v1"


def server_connection(
    url: str | None, settings: ServerSettings, engine: Settings | None = None
) -> Connection:
    """A client that fails fast: no retries and short timeouts, so a Redis outage turns
    into a quick 503 instead of requests piling up (the engine's client retries ~1 s)."""
    engine = engine or load_settings()
    url = url or engine.redis_url
    embedded = None
    if not url:
        embedded = EmbeddedRedis(engine.data_dir / "redis").start()
        url = embedded.url
    client = aioredis.Redis.from_url(
        url, decode_responses=True, socket_timeout=settings.redis_timeout,
        socket_connect_timeout=min(settings.redis_timeout, 1.0), max_connections=1024,
        retry=Retry(NoBackoff(), 0), health_check_interval=30,
    )  # fmt: skip
    return Connection(client, engine, embedded)


def _router() -> APIRouter:
    api = APIRouter(prefix=API_PREFIX)
    for module in (queues, jobs, flows, dead, schedules, workers, events, keys, audit):
        api.include_router(module.router)
    return api


def create_app(
    settings: ServerSettings | None = None,
    *,
    connection: Connection | None = None,
    redis_url: str | None = None,
) -> FastAPI:
    """The ASGI app. With ``connection`` it uses that (and never closes it); otherwise it
    connects at startup to ``redis_url`` / ``CONVEYOR_REDIS_URL`` and closes at shutdown."""
    settings = settings or load_server_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if connection is not None:
            yield
            return
        owned = server_connection(redis_url, settings)
        app.state.ctx = ServerContext.build(owned, settings)
        try:
            yield
        finally:
            await owned.close()

    app = FastAPI(
        title="Conveyor operations API", version=__version__, lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json", docs_url=None, redoc_url=None,
    )  # fmt: skip
    errors.install(app)
    app.include_router(_router())
    app.include_router(probes.router)
    app.include_router(metrics.router)
    if connection is not None:
        app.state.ctx = ServerContext.build(connection, settings)
    # Added last = outermost.
    app.add_middleware(AuditMiddleware)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )  # fmt: skip
    app.add_middleware(SecurityHeaders)
    return app
