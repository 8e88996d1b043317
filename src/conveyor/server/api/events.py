"""Server-Sent Events: the job state changes of one or more queues, live.

Each event's id is a cursor over every followed queue (``queue=stream-id,…``), so a client
that reconnects with ``Last-Event-ID`` resumes exactly where it stopped on each queue.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from conveyor.server.api.queues import visible_queues
from conveyor.server.audit import is_stream_id
from conveyor.server.auth import Principal
from conveyor.server.context import ServerContext
from conveyor.server.deps import Ctx, Viewer, open_queue
from conveyor.server.errors import bad_request

router = APIRouter(tags=["events"])
MAX_QUEUES = 50
BLOCK_MS = 1000
KEEPALIVE = 15.0


def parse_cursor(raw: str | None) -> dict[str, str]:
    if not raw:
        return {}
    positions: dict[str, str] = {}
    for part in raw.split(",")[: MAX_QUEUES + 1]:
        name, eq, entry = part.partition("=")
        if not eq or not is_stream_id(entry):
            raise bad_request("Last-Event-ID", "must be the id of an event this stream sent")
        positions[name] = entry
    return positions


def _cursor(positions: dict[str, str]) -> str:
    return ",".join(f"{name}={entry}" for name, entry in positions.items())


async def _start(ctx: ServerContext, names: list[str], resume: dict[str, str]) -> dict[str, str]:
    """Where to read each queue from: the resume point, or the current end."""
    positions: dict[str, str] = {}
    for name in names:
        if name in resume:
            positions[name] = resume[name]
        else:
            latest = await ctx.queue(name).recent_events(count=1)
            positions[name] = latest[0].id if latest else "0-0"
    return positions


def _payload(queue: str, fields: dict[str, str], who: Principal, ctx: ServerContext) -> str:
    data: dict[str, Any] = {"queue": queue, **fields}
    if not who.sees_payloads:
        if "progress" in fields:
            try:
                data["progress"] = ctx.redactor.redact(json.loads(fields["progress"]))
            except ValueError:
                data["progress"] = None
        data = ctx.redactor.redact(data)
    return json.dumps(data, separators=(",", ":"))


async def _stream(
    request: Request, ctx: ServerContext, who: Principal, positions: dict[str, str]
) -> AsyncIterator[str]:
    keys = {ctx.queue(name).keys.events: name for name in positions}
    client = ctx.connection.client
    yield "retry: 2000\n\n"
    quiet_since = time.monotonic()
    while not await request.is_disconnected():
        streams = {key: positions[name] for key, name in keys.items()}
        reply = await client.xread(streams, block=BLOCK_MS, count=500)
        for stream, entries in reply or []:
            name = keys[stream]
            for entry_id, fields in entries:
                positions[name] = entry_id
                event = fields.get("event", "message")
                yield (
                    f"id: {_cursor(positions)}\nevent: {event}\n"
                    f"data: {_payload(name, fields, who, ctx)}\n\n"
                )
            quiet_since = time.monotonic()
        if time.monotonic() - quiet_since > KEEPALIVE:
            yield ": keep-alive\n\n"
            quiet_since = time.monotonic()


@router.get(
    "/events", name="events", response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)  # fmt: skip
async def events(
    request: Request, ctx: Ctx, who: Viewer,
    queue: Annotated[list[str] | None, Query(max_length=MAX_QUEUES)] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=4000)] = None,
) -> StreamingResponse:  # fmt: skip
    """Job state changes of the given queues (all visible ones when none is given)."""
    if queue:
        # A queue may be followed before its first job exists.
        names = [
            (await open_queue(ctx, who, name, must_exist=False)).name
            for name in dict.fromkeys(queue)
        ]
    else:
        names = (await visible_queues(ctx, who))[:MAX_QUEUES]
    resume = parse_cursor(last_event_id)
    positions = await _start(ctx, names, resume)
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(
        _stream(request, ctx, who, positions), media_type="text/event-stream", headers=headers
    )
