"""The scheduler loop: turns due fire times into jobs. Run any number of instances.

Each instance reads the schedules that are due, plans their fire times in Python (cron and
time zones), then claims them with ``schedule_fire.lua``: the claim succeeds only while the
stored next fire time is still the one it read, and each job id is derived from the schedule
and the fire time, so instances that race, lag or die never enqueue a fire time twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime

from conveyor.connection import TRANSIENT_ERRORS, Connection, reconnect_delay
from conveyor.scheduler.model import Schedule, from_ms, ms
from conveyor.scheduler.store import SCHEDULED_QUEUES, Schedules, fire_args
from conveyor.validation import check_queue_name

log = logging.getLogger("conveyor.scheduler")

DUE_BATCH = 100


class Scheduler:
    """Enqueues the jobs of due schedules in ``queues`` (all queues with schedules if None).

    >>> scheduler = Scheduler(conn)
    >>> await scheduler.run()  # until scheduler.stop()
    """

    def __init__(
        self, connection: Connection, queues: Sequence[str] | None = None, *, poll: float = 1.0
    ) -> None:
        self.connection = connection
        self.queues = [check_queue_name(q) for q in queues] if queues is not None else None
        self.poll = poll
        self.fired = 0  # jobs this instance enqueued
        self._stores: dict[str, Schedules] = {}
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                wait = await self.tick()
                failures = 0
            except TRANSIENT_ERRORS as exc:
                failures += 1
                log.warning("scheduler: redis unavailable (%s)", exc)
                wait = reconnect_delay(failures)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), wait)

    async def _queues(self) -> list[str]:
        if self.queues is not None:
            return self.queues
        return sorted(await self.connection.client.smembers(SCHEDULED_QUEUES))

    def _store(self, queue: str) -> Schedules:
        if queue not in self._stores:
            self._stores[queue] = Schedules(self.connection, queue)
        return self._stores[queue]

    async def tick(self) -> float:
        """Fire everything due now; returns seconds until the next fire time (capped)."""
        wait = self.poll
        for queue in await self._queues():
            store = self._store(queue)
            now = await store.now()
            due = await self.connection.client.zrange(
                store.keys.key("sched:next"), "-inf", ms(now), byscore=True,
                offset=0, num=DUE_BATCH, withscores=True,
            )  # fmt: skip
            for schedule_id, score in due:
                try:
                    await self._fire(store, schedule_id, int(score), now)
                except TRANSIENT_ERRORS:
                    raise
                except Exception:  # one broken schedule must not stop the others
                    log.exception("schedule %s/%s could not fire", queue, schedule_id)
            wait = min(wait, await self._until_next(store, now))
        return max(wait, 0.001)

    async def _until_next(self, store: Schedules, now: datetime) -> float:
        first = await self.connection.client.zrange(
            store.keys.key("sched:next"), 0, 0, withscores=True
        )
        if not first:
            return self.poll
        return (float(first[0][1]) - ms(now)) / 1000

    async def _fire(self, store: Schedules, schedule_id: str, expected: int, now: datetime) -> None:
        definition = await self.connection.client.hget(store.keys.key("sched:def"), schedule_id)
        if definition is None:
            return
        schedule = Schedule.from_json(definition)
        fires, upcoming = schedule.due(from_ms(expected), now)
        args = fire_args(schedule, fires, self.connection.settings.max_payload_bytes)
        code, created = await store.script(
            "schedule_fire", store.maxlen, schedule_id, expected, definition,
            ms(upcoming) if upcoming else -1,
            -1 if schedule.max_runs is None else schedule.max_runs, *args,
        )  # fmt: skip
        if code == 1:
            self.fired += int(created)
            log.debug("schedule %s/%s: %d jobs", store.queue, schedule_id, created)
