"""ASGI middleware: security headers on every response, and the audit trail entry of
every mutating call, written before the response leaves (so a client that reads the
trail right after its call sees the entry)."""

from __future__ import annotations

import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.server.context import ServerContext
from conveyor.server.errors import REDIS_DOWN

log = logging.getLogger("conveyor.server")

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)


class AuditMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in MUTATING:
            await self.app(scope, receive, send)
            return

        async def audited(message: Message) -> None:
            if message["type"] == "http.response.start":
                await self._record(scope, int(message["status"]))
            await send(message)

        await self.app(scope, receive, audited)

    async def _record(self, scope: Scope, status: int) -> None:
        route = scope.get("route")
        if route is None:
            return  # no endpoint matched: not a call to any action
        state: dict[str, Any] = scope.get("state", {})
        principal = state.get("principal")
        ctx: ServerContext = scope["app"].state.ctx
        redact = ctx.redactor.redact
        query = scope.get("query_string", b"").decode("latin-1")[:1000]
        client = scope.get("client") or ("", 0)
        try:
            await ctx.audit.record(
                key_id=principal.key_id if principal else "",
                key_name=principal.name if principal else "anonymous",
                role=str(principal.role) if principal else "",
                action=getattr(route, "name", "unknown"),
                target={k: str(v) for k, v in scope.get("path_params", {}).items()},
                params={"body": redact(state.get("body")), "query": query},
                client=str(client[0]), status=status,
                outcome="ok" if status < 400 else state.get("error_code", f"http_{status}"),
            )  # fmt: skip
        except REDIS_DOWN as exc:
            log.warning("audit entry not written (%s): %s %s", exc, scope["method"], scope["path"])
