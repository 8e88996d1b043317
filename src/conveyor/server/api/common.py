"""Query parameters shared by listing endpoints: bounded limits and opaque cursors."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from conveyor.server.errors import bad_request

MAX_LIMIT = 500
MAX_CURSOR = 10**7

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"page size, 1 to {MAX_LIMIT}")]
Cursor = Annotated[
    str | None,
    Query(max_length=40, description="the next_cursor of the previous page"),
]


def offset_of(cursor: str | None) -> int:
    """Cursors are decimal positions; anything else is a clear 400, never a 500."""
    if cursor is None or cursor == "":
        return 0
    if not cursor.isascii() or not cursor.isdigit() or int(cursor) > MAX_CURSOR:
        raise bad_request("cursor", "must be a next_cursor returned by a previous page")
    return int(cursor)
