"""Drive the Lua scripts directly, with the same KEYS layout the engine gives them."""

from __future__ import annotations

import json
from typing import Any

import pytest

import conveyor
from conveyor.keys import QueueKeys

MAXLEN = 1000


class Lua:
    """One queue's scripts and a view of its keys, for asserting the state a script leaves."""

    def __init__(self, conn: conveyor.Connection, queue: str) -> None:
        self.conn = conn
        self.r = conn.client
        self.keys = QueueKeys(queue)

    async def __call__(self, script: str, *args: Any) -> Any:
        return await self.conn.scripts(script, self.keys.layout, list(args))

    async def add(self, job_id: str, *, priority: int = 0, delay_ms: int = 0) -> int:
        spec = json.dumps({"name": "noop", "data": None, "options": {}})
        codes = await self("add", MAXLEN, job_id, spec, priority, delay_ms)
        return int(codes[0])

    async def fetch(self, count: int = 1, *, worker: str = "w1", lease_ms: int = 60_000) -> Any:
        return await self("fetch", MAXLEN, worker, lease_ms, count)

    async def lease(self, job_id: str, *, lease_ms: int = 60_000) -> str:
        """Add a job and fetch it; returns its fencing token."""
        await self.add(job_id)
        reply = await self.fetch(lease_ms=lease_ms)
        assert reply[2] == job_id
        return str(reply[3])

    async def complete(
        self,
        job_id: str,
        token: str,
        result: str = "1",
        *,
        keep: int = -1,
        keep_age_ms: int = -1,
        fetch: int = 0,
    ) -> Any:
        """Returns ``[codes, fetched]`` as the script does."""
        args = (MAXLEN, keep, keep_age_ms, "w1", 60_000, fetch, 1, job_id, token, result)
        return await self("complete", *args)

    async def field(self, name: str, job_id: str) -> str | None:
        value: str | None = await self.r.hget(self.keys.job_field(name), job_id)
        return value

    async def state(self, job_id: str) -> str | None:
        return await self.field("state", job_id)

    async def members(self, state: str) -> list[str]:
        members: list[str] = await self.r.zrange(self.keys.state_set(state), 0, -1)
        return members

    async def where(self, job_id: str) -> list[str]:
        """The state sets that hold ``job_id`` (exactly one for a live job)."""
        sets = ("waiting", "delayed", "active", "completed", "dead", "cancelled")
        return [s for s in sets if await self.r.zscore(self.keys.state_set(s), job_id) is not None]

    async def events(self) -> list[tuple[str, str]]:
        entries = await self.r.xrange(self.keys.events)
        return [(fields.get("job", ""), fields["event"]) for _, fields in entries]

    async def snapshot(self) -> dict[str, Any]:
        """Every key of the queue and its content, to prove a refused call wrote nothing."""
        out: dict[str, Any] = {}
        for key in self.keys.layout:
            kind = await self.r.type(key)
            if kind == "zset":
                out[key] = await self.r.zrange(key, 0, -1, withscores=True)
            elif kind == "hash":
                out[key] = await self.r.hgetall(key)
            elif kind == "stream":
                out[key] = await self.r.xlen(key)
            elif kind == "string":
                out[key] = await self.r.get(key)
        return out


@pytest.fixture
def lua(conn: conveyor.Connection, queue_name: str) -> Lua:
    return Lua(conn, queue_name)
