"""Reading and changing a queue's flow-control limits at runtime (they live in Redis)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conveyor.errors import InvalidLimits
from conveyor.limiter.limits import GroupLimits, Limits, Rate
from conveyor.queue import Queue
from conveyor.validation import check_group

_SET_CODES = {1: "set", 0: "removed"}


@dataclass(frozen=True, slots=True)
class FlowStatus:
    """A snapshot of a queue's flow control: how many groups are where, and how busy."""

    waiting_in_groups: int  # grouped jobs waiting to start
    ready_groups: int  # groups in the round-robin rotation
    blocked_groups: int  # held back by a rate window or a throttle
    full_groups: int  # at their concurrency limit
    inflight: dict[str, int]  # group -> jobs running now


class Limiter:
    """The flow-control limits of one queue, shared by every worker that serves it.

    >>> limiter = Limiter(queue)
    >>> await limiter.set(Limits(rate=Rate(100, 1.0), group_concurrency=2))
    >>> await limiter.set_group("tenant:acme", GroupLimits(concurrency=10))
    """

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self._keys = queue.keys

    async def _run(self, script: str, args: list[Any]) -> Any:
        maxlen = self.queue.connection.settings.events_maxlen
        return await self.queue.connection.scripts(script, self._keys.layout, [maxlen, *args])

    def _key(self, name: str) -> str:
        return self._keys.key(f"fc:{name}")

    async def set(self, limits: Limits) -> None:
        """Replace the queue-wide limits and the per-group defaults (``Limits()`` clears)."""
        if not isinstance(limits, Limits):
            raise InvalidLimits("limits", f"must be a conveyor.limiter.Limits, got {limits!r}")
        await self._run("set_limits", limits.args())

    async def get(self) -> Limits:
        raw = await self.queue.connection.client.hmget(
            self._key("config"), "rate", "conc", "krate", "kconc"
        )
        return Limits(
            rate=Rate.decode(raw[0]),
            concurrency=int(raw[1]) if raw[1] else None,
            group_rate=Rate.decode(raw[2]),
            group_concurrency=int(raw[3]) if raw[3] else None,
        )

    async def set_group(self, group: str, limits: GroupLimits) -> None:
        """Give ``group`` limits of its own (a limit left None is off for that group)."""
        check_group(group)
        if not isinstance(limits, GroupLimits):
            raise InvalidLimits("limits", f"must be a conveyor.limiter.GroupLimits, got {limits!r}")
        await self._run("set_key_limits", [group, limits.encode()])

    async def clear_group(self, group: str) -> bool:
        """Drop ``group``'s own limits (the defaults apply again); False if it had none."""
        check_group(group)
        return int(await self._run("set_key_limits", [group, ""])) == 0

    async def group_limits(self, group: str) -> GroupLimits | None:
        """``group``'s own limits, or None when the queue's per-group defaults apply."""
        check_group(group)
        raw = await self.queue.connection.client.hget(self._key("config"), f"k:{group}")
        return GroupLimits.decode(raw) if raw else None

    async def status(self) -> FlowStatus:
        pipe = self.queue.connection.client.pipeline(transaction=False)
        pipe.zcard(self._key("jobs"))
        pipe.zcard(self._key("lanes"))
        pipe.zcard(self._key("blocked"))
        pipe.scard(self._key("full"))
        pipe.hgetall(self._key("inflight"))
        waiting, ready, blocked, full, inflight = await pipe.execute()
        return FlowStatus(
            waiting, ready, blocked, full, {group: int(n) for group, n in inflight.items()}
        )
