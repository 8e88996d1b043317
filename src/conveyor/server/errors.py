"""One error envelope for every failure: ``{"error": {"code", "message", "field"}}``.

Bad input is always a 4xx naming the offending field; an unreachable Redis is a fast 503
with ``Retry-After``, so load balancers and clients back off instead of hanging.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from conveyor.errors import (
    IdempotencyConflict,
    InvalidStateTransition,
    JobNotFound,
    RedisUnavailable,
    ScheduleNotFound,
    ValidationError,
)

log = logging.getLogger("conveyor.server")

REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, BusyLoadingError, RedisUnavailable)
RETRY_AFTER_REDIS = 2


class ApiError(Exception):
    """An error the API reports as is."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}


def bad_request(field: str, message: str, code: str = "invalid") -> ApiError:
    return ApiError(400, code, message, field)


def not_found(field: str, message: str) -> ApiError:
    return ApiError(404, "not_found", message, field)


def envelope(
    request: Request | None,
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    if request is not None:
        request.state.error_code = code  # read by the audit trail
    body = {"error": {"code": code, "message": message, "field": field}}
    return JSONResponse(body, status_code=status, headers=headers)


def _field_of(loc: Any) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or (str(loc[0]) if loc else None)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return envelope(request, exc.status, exc.code, exc.message, exc.field, exc.headers)


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ValidationError)
    if isinstance(exc, IdempotencyConflict):  # valid on its own; clashes with a past request
        return envelope(request, 409, "idempotency_conflict", exc.message, exc.field)
    return envelope(request, 400, "invalid", exc.message, exc.field)


async def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    field = _field_of(first.get("loc", ()))
    message = str(first.get("msg", "invalid request"))
    code = "invalid_json" if first.get("type") == "json_invalid" else "invalid"
    return envelope(request, 422, code, f"{message}", field)


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, JobNotFound)
    return envelope(request, 404, "job_not_found", str(exc), "job_id")


async def _schedule_not_found(request: Request, exc: Exception) -> JSONResponse:
    return envelope(request, 404, "schedule_not_found", str(exc), "schedule_id")


async def _conflict(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidStateTransition)
    return envelope(request, 409, "invalid_state", str(exc), "state")


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    code = codes.get(exc.status_code, "http_error")
    message = "no such endpoint" if exc.status_code == 404 else str(exc.detail)
    headers = dict(exc.headers) if exc.headers else None
    return envelope(request, exc.status_code, code, message, None, headers)


async def _redis_down(request: Request, exc: Exception) -> JSONResponse:
    log.warning("redis unavailable: %s", exc)
    return envelope(
        request, 503, "redis_unavailable", "Redis is not reachable; try again shortly",
        None, {"Retry-After": str(RETRY_AFTER_REDIS)},
    )  # fmt: skip


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return envelope(request, 500, "internal", "internal error; see the server log")


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(ValidationError, _validation)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(JobNotFound, _not_found)
    app.add_exception_handler(InvalidStateTransition, _conflict)
    app.add_exception_handler(ScheduleNotFound, _schedule_not_found)
    app.add_exception_handler(StarletteHTTPException, _http)
    for error in REDIS_DOWN:
        app.add_exception_handler(error, _redis_down)
    app.add_exception_handler(Exception, _internal)
