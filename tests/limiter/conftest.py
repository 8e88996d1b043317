"""Drive the flow-control scripts directly, and read back the keys they keep."""

from __future__ import annotations

import json
from typing import Any

import pytest

import conveyor
from tests.scripts.conftest import MAXLEN, Lua


def spec(group: str = "", deadline_ms: int = -1) -> str:
    """A job spec as prepare() writes it: flow control first, where add.lua reads it."""
    if not group and deadline_ms < 0:
        return json.dumps({"name": "noop", "data": None})
    return json.dumps(
        {"fc": {"g": group, "x": deadline_ms}, "name": "noop", "data": None},
        separators=(",", ":"),
    )


class FlowLua(Lua):
    def fc(self, name: str) -> str:
        return self.keys.key(f"fc:{name}")

    async def add_job(
        self, job_id: str, group: str = "", *, priority: int = 0, delay_ms: int = 0,
        deadline_ms: int = -1,
    ) -> int:  # fmt: skip
        codes = await self("add", MAXLEN, job_id, spec(group, deadline_ms), priority, delay_ms)
        return int(codes[0])

    async def set_limits(
        self, rate: str = "", conc: str = "", group_rate: str = "", group_conc: str = ""
    ) -> int:
        return int(await self("set_limits", MAXLEN, rate, conc, group_rate, group_conc))

    async def fail_job(
        self, job_id: str, token: str, *, delay_ms: int = 0, throttle_ms: int = 0
    ) -> int:
        record = json.dumps({"outcome": "retry", "worker": "w1", "error": {"type": "E"}})
        args = (MAXLEN, -1, -1, job_id, token, json.dumps({"type": "E"}), record, "retry",
                delay_ms, 0, "rate limited", throttle_ms)  # fmt: skip
        return int(await self("fail", *args))

    async def lanes(self) -> list[str]:
        lanes: list[str] = await self.r.zrange(self.fc("lanes"), 0, -1)
        return lanes

    async def blocked(self) -> dict[str, float]:
        pairs = await self.r.zrange(self.fc("blocked"), 0, -1, withscores=True)
        return dict(pairs)

    async def full(self) -> set[str]:
        members: set[str] = await self.r.smembers(self.fc("full"))
        return members

    async def inflight(self) -> dict[str, str]:
        counts: dict[str, str] = await self.r.hgetall(self.fc("inflight"))
        return counts

    async def waiting_in(self, group: str) -> list[str]:
        members = await self.r.zrangebylex(self.fc("jobs"), f"[{group}\0", f"({group}\1")
        return [member.split("\0")[2] for member in members]


def fetched(reply: list[Any]) -> list[str]:
    return [str(job_id) for job_id in reply[2::5]]


def token_of(reply: list[Any], job_id: str) -> str:
    ids = reply[2::5]
    return str(reply[3 + 5 * ids.index(job_id)])


@pytest.fixture
def flow(conn: conveyor.Connection, queue_name: str) -> FlowLua:
    return FlowLua(conn, queue_name)
