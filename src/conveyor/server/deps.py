"""FastAPI dependencies: the server context, the caller (authenticated, rate limited,
checked against a role) and queue access."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from conveyor.keys import GLOBAL_QUEUES, PREFIX
from conveyor.queue import Queue
from conveyor.server.auth import KEYS_HASH, Principal, Role, parse_token, verify
from conveyor.server.context import ServerContext
from conveyor.server.errors import ApiError
from conveyor.validation import check_queue_name

log = logging.getLogger("conveyor.server")
bearer = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer cvk_…`")
UNAUTHORIZED_MESSAGE = "a valid API key is required: Authorization: Bearer <key>"


async def get_ctx(request: Request) -> ServerContext:
    # async on purpose: FastAPI runs plain-def dependencies in a thread pool.
    ctx: ServerContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ServerContext, Depends(get_ctx)]


def unauthorized() -> ApiError:
    # One body for missing, malformed, unknown and revoked keys: no hint which it was.
    return ApiError(
        401, "unauthorized", UNAUTHORIZED_MESSAGE, "authorization",
        {"WWW-Authenticate": "Bearer"},
    )  # fmt: skip


def _retry_after() -> dict[str, str]:
    return {"Retry-After": str(max(1, 60 - int(time.time()) % 60))}


def _this_minute(kind: str, who: str) -> str:
    """The Redis counter of ``kind`` for ``who`` in the current minute."""
    return f"{PREFIX}:server:{kind}:{who}:{int(time.time() // 60)}"


async def _count(ctx: ServerContext, key: str) -> int:
    """Add one to a per-minute counter (kept a minute past its own) and return it."""
    pipe = ctx.connection.client.pipeline(transaction=False)
    pipe.incr(key)
    pipe.expire(key, 120)
    count, _ = await pipe.execute()
    return int(count)


async def _rate_limit(ctx: ServerContext, principal: Principal) -> None:
    if (
        await _count(ctx, _this_minute("rate", principal.key_id))
        > ctx.settings.rate_limit_per_minute
    ):
        raise ApiError(
            429, "rate_limited",
            f"more than {ctx.settings.rate_limit_per_minute} requests this minute for this key",
            "authorization", _retry_after(),
        )  # fmt: skip


def _refuse_guessing(ctx: ServerContext, failures: str | None) -> None:
    """429 for an address that presented too many invalid keys this minute, whatever key
    it presents now: a right guess must not get through either."""
    if failures is not None and int(failures) >= ctx.settings.auth_failures_per_minute:
        raise ApiError(
            429, "auth_rate_limited",
            f"more than {ctx.settings.auth_failures_per_minute} invalid API keys this minute "
            "from this address; try again later",
            "authorization", _retry_after(),
        )  # fmt: skip


async def _authenticate(ctx: ServerContext, token: str, client: str) -> Principal | None:
    """The token's principal, reading the address's failures and the key in one round trip."""
    parsed = parse_token(token)
    pipe = ctx.connection.client.pipeline(transaction=False)
    pipe.get(_this_minute("authfail", client))
    if parsed is not None:
        pipe.hget(KEYS_HASH, parsed[0])
    replies = await pipe.execute()
    _refuse_guessing(ctx, replies[0])
    principal = verify(replies[1], parsed[1]) if parsed is not None else None
    if principal is None:
        await _count_failure(ctx, client)
    return principal


async def _count_failure(ctx: ServerContext, client: str) -> None:
    count = await _count(ctx, _this_minute("authfail", client))
    if count == ctx.settings.auth_failures_per_minute:
        log.warning(
            "address %s presented %d invalid API keys this minute; refusing its keys until "
            "the minute ends", client, count,
        )  # fmt: skip


def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting keys of ``role`` or above."""

    async def authenticate(
        request: Request,
        ctx: Ctx,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        if credentials is None:
            raise unauthorized()
        client = request.client.host if request.client else ""
        principal = await _authenticate(ctx, credentials.credentials, client)
        if principal is None:
            raise unauthorized()
        request.state.principal = principal
        if not principal.role.allows(role):
            raise ApiError(
                403, "forbidden",
                f"this key's role '{principal.role}' may not do this; it needs '{role}'",
                "authorization",
            )  # fmt: skip
        await _rate_limit(ctx, principal)
        return principal

    return authenticate


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]


async def open_queue(
    ctx: ServerContext, principal: Principal, name: str, *, must_exist: bool = True
) -> Queue:
    """Validate the name, check the key may use it, and that it exists."""
    check_queue_name(name)
    if not principal.can_see(name):
        raise ApiError(403, "forbidden_queue", f"this key may not use queue {name!r}", "queue")
    if must_exist and not await ctx.connection.client.sismember(GLOBAL_QUEUES, name):
        raise ApiError(404, "queue_not_found", f"no queue {name!r}", "queue")
    return ctx.queue(name)
