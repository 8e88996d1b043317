"""The audit trail (admin only), newest first."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query

from conveyor.server.api.common import Cursor, Limit
from conveyor.server.audit import is_stream_id
from conveyor.server.deps import Admin, Ctx
from conveyor.server.errors import bad_request

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", name="read_audit")
async def read_audit(
    ctx: Ctx, who: Admin, limit: Limit = 100, cursor: Cursor = None,
    key_id: Annotated[str | None, Query(max_length=12)] = None,
    action: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:  # fmt: skip
    if cursor and not is_stream_id(cursor):
        raise bad_request("cursor", "must be a next_cursor returned by a previous page")
    entries, next_cursor = await ctx.audit.read(
        limit=limit, before=cursor or None, key_id=key_id, action=action
    )
    return {"entries": [asdict(e) for e in entries], "next_cursor": next_cursor}
