"""API keys (admin only): create, list, revoke. The token is returned once, at creation."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Response

from conveyor.server.body import StrictJSONRoute
from conveyor.server.deps import Admin, Ctx
from conveyor.server.errors import bad_request, not_found
from conveyor.server.schemas import KeyIn

router = APIRouter(prefix="/keys", tags=["keys"], route_class=StrictJSONRoute)
_KEY_ID = re.compile(r"[0-9a-f]{12}")


@router.post("", status_code=201, name="create_key")
async def create_key(body: KeyIn, ctx: Ctx, who: Admin) -> dict[str, Any]:
    key, token = await ctx.keys.create(body.name, body.role, body.queues)
    return {"key": key.public(), "token": token}


@router.get("", name="list_keys")
async def list_keys(ctx: Ctx, who: Admin) -> dict[str, Any]:
    return {"keys": [key.public() for key in await ctx.keys.list()]}


@router.delete("/{key_id}", status_code=204, name="revoke_key")
async def revoke_key(key_id: str, ctx: Ctx, who: Admin) -> Response:
    if not _KEY_ID.fullmatch(key_id):
        raise bad_request("key_id", "must be the 12 hexadecimal characters of a key id")
    if await ctx.keys.revoke(key_id) is None:
        raise not_found("key_id", f"no key {key_id!r}")
    return Response(status_code=204)
