"""Connecting to Redis: a URL, or an embedded server when none is configured."""

from __future__ import annotations

import random
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from conveyor.config import Settings, load_settings
from conveyor.embedded import EmbeddedRedis
from conveyor.packing import fast_packing
from conveyor.scripts import AsyncScripts, SyncScripts
from conveyor.wire import Wire

#: Errors after which a command may be tried again on a fresh connection.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    RedisConnectionError, RedisTimeoutError, ConnectionError, OSError,
)  # fmt: skip
SOCKET_TIMEOUT = 15.0  # longer than any blocking call Conveyor makes
RETRIES = 4  # per connect and per command (redis-py nests them): a producer gives up after ~1-3 s


def _retry_policy(module: Any) -> Any:
    backoff = ExponentialWithJitterBackoff(base=0.05, cap=1.0)
    return module.retry.Retry(backoff, RETRIES, supported_errors=TRANSIENT_ERRORS)


def client_options(url: str, settings: Settings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_connect_timeout": 2.0,
        "health_check_interval": 30,
        "decode_responses": True,
        "max_connections": 256,
    }
    if url.startswith("rediss://"):
        tls = {
            "ssl_ca_certs": settings.redis_tls_ca_file,
            "ssl_certfile": settings.redis_tls_cert_file,
            "ssl_keyfile": settings.redis_tls_key_file,
        }
        options.update({k: str(v) for k, v in tls.items() if v is not None})
    return options


def reconnect_delay(failures: int, *, base: float = 0.05, cap: float = 2.0) -> float:
    """Capped exponential backoff with full jitter, for loops that outlive a Redis outage."""
    return random.uniform(0, min(cap, base * 2 ** min(failures, 16)))


class Connection:
    """An async Redis client, its scripts, the settings, and the embedded server if any."""

    def __init__(
        self, client: aioredis.Redis, settings: Settings, server: EmbeddedRedis | None = None
    ) -> None:
        # Typed loosely on purpose: redis-py declares bytes | str replies, and every
        # client here is built with decode_responses=True.
        self.client: Any = client
        self.settings = settings
        self.server = server
        #: Script calls (every job state change) take the lean path of conveyor.wire.
        self.wire = Wire.matching(client)
        self.scripts = AsyncScripts(self.wire)

    async def close(self) -> None:
        await self.wire.close()
        await self.client.aclose()
        if self.server is not None:
            self.server.stop()


def _resolve_url(url: str | None, settings: Settings) -> tuple[str, EmbeddedRedis | None]:
    url = url or settings.redis_url
    if url:
        return url, None
    server = EmbeddedRedis(settings.data_dir / "redis").start()
    return server.url, server


def _make_async_client(url: str, settings: Settings) -> aioredis.Redis:
    import redis.asyncio.retry  # noqa: F401 - registers the module attribute used below

    # A blocking pool: a burst of concurrent calls waits for a free connection instead of
    # failing with "Too many connections".
    pool = aioredis.BlockingConnectionPool.from_url(
        url, retry=_retry_policy(aioredis), timeout=SOCKET_TIMEOUT, **client_options(url, settings)
    )
    pool.connection_class = fast_packing(pool.connection_class)
    return aioredis.Redis.from_pool(pool)


async def connect(url: str | None = None, *, settings: Settings | None = None) -> Connection:
    """Connect to ``url``, ``CONVEYOR_REDIS_URL``, or a new embedded server, in that order."""
    settings = settings or load_settings()
    resolved, server = _resolve_url(url, settings)
    client = _make_async_client(resolved, settings)
    return Connection(client, settings, server)


class SyncConnection:
    """The blocking twin of :class:`Connection`, for producers in sync web apps."""

    def __init__(
        self, client: redis.Redis, settings: Settings, server: EmbeddedRedis | None = None
    ) -> None:
        self.client: Any = client
        self.settings = settings
        self.server = server
        self.scripts = SyncScripts(client)

    def close(self) -> None:
        self.client.close()
        if self.server is not None:
            self.server.stop()


def connect_sync(url: str | None = None, *, settings: Settings | None = None) -> SyncConnection:
    import redis.retry

    settings = settings or load_settings()
    resolved, server = _resolve_url(url, settings)
    pool = redis.BlockingConnectionPool.from_url(
        resolved,
        retry=_retry_policy(redis),
        timeout=SOCKET_TIMEOUT,
        **client_options(resolved, settings),
    )
    pool.connection_class = fast_packing(pool.connection_class)
    client = redis.Redis.from_pool(pool)
    return SyncConnection(client, settings, server)
