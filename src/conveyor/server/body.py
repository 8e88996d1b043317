"""Request bodies: a size limit enforced while reading, and strict JSON only.

Strict means: ``application/json`` content type (nothing is ever unpickled or form-decoded),
UTF-8, no NaN/Infinity, integers within 64 bits, at most :data:`MAX_DEPTH` levels.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.server.errors import ApiError

MAX_DEPTH = 32
MAX_INT = 2**63 - 1
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class BodyTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, "body_too_large", f"the request body exceeds {limit} bytes", "body")


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_json", message, "body")


def _reject_constant(name: str) -> Any:
    raise _invalid(f"{name} is not JSON; use a finite number or null")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 19 or abs(int(text)) > MAX_INT:
        raise _invalid(f"integer {text[:30]}... is out of the 64-bit range")
    return int(text)


def _max_depth(raw: str) -> int:
    """Nesting depth of JSON text, outside strings; checked before parsing so hostile
    nesting never reaches the (recursive) decoder."""
    depth = deepest = 0
    in_string = escaped = False
    for char in raw:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return deepest
        elif char in "]}":
            depth -= 1
    return deepest


def parse_json(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid("the body is not UTF-8") from None
    brackets = text.count("[") + text.count("{")
    if brackets > MAX_DEPTH and _max_depth(text) > MAX_DEPTH:
        raise _invalid(f"the body is nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        raise _invalid(
            f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise _invalid(f"the body is nested deeper than {MAX_DEPTH} levels") from None


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def strict_json(request: Request) -> None:
    """Parse the body once, strictly, and leave it where FastAPI looks for it."""
    if request.method not in _BODY_METHODS:
        return
    body = await request.body()
    if not body:
        return
    if not _is_json(request.headers.get("content-type", "")):
        raise ApiError(
            415, "unsupported_media_type", "send the body as application/json", "content-type"
        )
    parsed = parse_json(body)
    request._json = parsed  # FastAPI's request.json() returns this cached value
    request.state.body = parsed


class StrictJSONRoute(APIRoute):
    """A route whose body goes through :func:`strict_json` before FastAPI decodes it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            await strict_json(request)
            return await handler(request)

        return strict_handler


class BodyLimit:
    """ASGI middleware: 413 when Content-Length, or the bytes actually read, exceed ``limit``."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                await _too_large(self.limit, send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, limited, send)


async def _too_large(limit: int, send: Send) -> None:
    body = json.dumps(
        {
            "error": {
                "code": "body_too_large",
                "message": f"the request body exceeds {limit} bytes",
                "field": "body",
            }
        }
    ).encode()
    await send({
        "type": "http.response.start", "status": 413,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()), (b"connection", b"close")],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})
