"""Schedules as data in Redis: upsert, pause, resume, remove, run now, list.

A queue's schedules live under its hash tag, next to its jobs, so that claiming a fire time
and enqueueing its job is one script (``schedule_fire.lua``). The set ``cv:schedules`` lists
the queues that have schedules, for schedulers that serve every queue.
"""

from __future__ import annotations

import builtins
import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from conveyor.codec import prepare
from conveyor.connection import Connection
from conveyor.errors import ScheduleNotFound
from conveyor.job import BUILTIN_DEFAULTS, Enqueued
from conveyor.keys import PREFIX, QueueKeys
from conveyor.scheduler.model import Schedule, check_schedule_id, from_ms, ms
from conveyor.validation import check_queue_name

log = logging.getLogger("conveyor.scheduler")

SCHEDULED_QUEUES = f"{PREFIX}:schedules"
SCHEDULE_STRUCTURES = ("sched:def", "sched:next", "sched:runs", "sched:paused", "sched:last")


def schedule_keys(keys: QueueKeys) -> list[str]:
    """The layout, then the schedule structures in the order the scripts name them."""
    return keys.layout + [keys.key(name) for name in SCHEDULE_STRUCTURES]


def fire_job_id(schedule_id: str, fire: datetime) -> str:
    """Derived from schedule and fire time: the same fire time can only ever be one job."""
    return f"{schedule_id}-{ms(fire)}"


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """A stored schedule with its state: next fire time (None when paused or over)."""

    schedule: Schedule
    next_fire: datetime | None
    last_fire: datetime | None
    runs: int
    paused: bool


class Schedules:
    """The schedules of one queue.

    >>> schedules = Schedules(conn, "reports")
    >>> await schedules.upsert(Schedule("nightly", "report", cron="0 2 * * *", tz="Europe/Berlin"))
    """

    def __init__(self, connection: Connection, queue: str) -> None:
        self.queue = check_queue_name(queue)
        self.connection = connection
        self.keys = QueueKeys(self.queue)
        self._keys = schedule_keys(self.keys)
        self._base = len(self.keys.layout) + 1
        self.maxlen = connection.settings.events_maxlen

    async def script(self, script: str, *args: Any) -> Any:
        return await self.connection.scripts(script, self._keys, [self._base, *args])

    async def now(self) -> datetime:
        """Redis time, so that every instance agrees on what is due."""
        seconds, micros = await self.connection.client.time()
        return datetime.fromtimestamp(int(seconds) + int(micros) / 1e6, UTC)

    async def upsert(self, schedule: Schedule) -> str:
        """Create or replace; returns ``created``, ``updated`` or ``unchanged``."""
        upcoming = schedule.next_after(await self.now())
        await self.connection.client.sadd(SCHEDULED_QUEUES, self.queue)
        code = await self.script(
            "schedule_upsert", schedule.id, schedule.to_json(), ms(upcoming) if upcoming else -1
        )
        return {0: "unchanged", 1: "created", 2: "updated"}[int(code)]

    async def pause(self, schedule_id: str) -> bool:
        return await self._set_paused(schedule_id, True)

    async def resume(self, schedule_id: str) -> bool:
        """Resume from now: fire times missed while paused are not caught up."""
        return await self._set_paused(schedule_id, False)

    async def _set_paused(self, schedule_id: str, pause: bool) -> bool:
        info = await self.get(schedule_id)
        upcoming = None if pause else info.schedule.next_after(await self.now())
        code = await self.script(
            "schedule_set_paused", schedule_id, "1" if pause else "0",
            ms(upcoming) if upcoming else -1,
        )  # fmt: skip
        if code == -1:
            raise ScheduleNotFound(self.queue, schedule_id)
        return bool(code)

    async def remove(self, schedule_id: str) -> None:
        check_schedule_id(schedule_id)
        if not await self.script("schedule_remove", schedule_id):
            raise ScheduleNotFound(self.queue, schedule_id)

    async def run_now(self, schedule_id: str) -> Enqueued:
        """Enqueue one job of the schedule at once; its fire times are not affected."""
        schedule = (await self.get(schedule_id)).schedule
        from conveyor.queue import Queue

        options = schedule.job_options().with_id(f"{schedule_id}-now-{time.time_ns() // 1000}")
        return await Queue(self.queue, self.connection).add(schedule.job, schedule.data, options)

    async def get(self, schedule_id: str) -> ScheduleInfo:
        check_schedule_id(schedule_id)
        (info,) = await self._read([schedule_id])
        if info is None:
            raise ScheduleNotFound(self.queue, schedule_id)
        return info

    async def list(self) -> list[ScheduleInfo]:
        """Every schedule of the queue with its next fire time, soonest first."""
        ids = await self.connection.client.hkeys(self.keys.key("sched:def"))
        infos = [i for i in await self._read(ids) if i is not None]
        far = datetime.max.replace(tzinfo=UTC)
        return sorted(infos, key=lambda i: (i.next_fire or far, i.schedule.id))

    async def _read(self, ids: builtins.list[str]) -> builtins.list[ScheduleInfo | None]:
        if not ids:
            return []
        client, key = self.connection.client, self.keys.key
        pipe = client.pipeline(transaction=False)
        pipe.hmget(key("sched:def"), ids)
        pipe.zmscore(key("sched:next"), ids)
        pipe.hmget(key("sched:last"), ids)
        pipe.hmget(key("sched:runs"), ids)
        pipe.hmget(key("sched:paused"), ids)
        defs, nexts, lasts, runs, paused = await pipe.execute()
        rows = zip(defs, nexts, lasts, runs, paused, strict=True)
        return [None if row[0] is None else _info(self.queue, *row) for row in rows]


def _info(
    queue: str, definition: str, nxt: Any, last: Any, runs: Any, paused: Any
) -> ScheduleInfo | None:
    try:
        schedule = Schedule.from_json(definition)
    except (ValueError, KeyError, TypeError):  # ValidationError is a ValueError
        log.warning("queue %s: unreadable schedule definition %.200s", queue, definition)
        return None
    return ScheduleInfo(
        schedule=schedule,
        next_fire=from_ms(int(nxt)) if nxt is not None else None,
        last_fire=from_ms(int(last)) if last else None,
        runs=int(runs or 0),
        paused=paused is not None,
    )


def fire_args(schedule: Schedule, fires: list[datetime], max_bytes: int) -> list[Any]:
    """Per job: id, spec JSON, priority, fire ms (see ``schedule_fire.lua``)."""
    base = schedule.job_options()
    args: list[Any] = []
    for fire in fires:
        meta = {**base.meta, "fire_time": fire.isoformat()}
        options = replace(base, job_id=fire_job_id(schedule.id, fire), meta=meta)
        job = prepare(schedule.job, schedule.data, options, BUILTIN_DEFAULTS, max_bytes)
        job_id, spec, priority, _delay = job.args
        args += [job_id, spec, priority, ms(fire)]
    return args
