"""Per-queue health — ``healthy | degraded | unhealthy`` with reasons — from thresholds.

Everything is read from Redis: counts from the state sets, rates and the last fetch from
the queue's event stream (at most :data:`EVENT_SAMPLE` recent events, so the check stays
bounded on a busy queue), live workers from the registry.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from conveyor.queue import Event, Queue
from conveyor.registry import WorkerInfo
from conveyor.server.settings import HealthThresholds

EVENT_SAMPLE = 5000
OLDEST_SAMPLE = 10
FAILURE_EVENTS = ("retrying", "dead")


@dataclass(slots=True)
class QueueSignals:
    """What health is judged on; also what the queue list reports as rates."""

    counts: dict[str, int]
    paused: bool
    workers: int
    completed_per_minute: float
    failed_per_minute: float
    dead_per_minute: float
    failure_rate: float | None
    samples: int
    seconds_since_fetch: float | None
    oldest_waiting_age: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "completed_per_minute": round(self.completed_per_minute, 3),
            "failed_per_minute": round(self.failed_per_minute, 3),
            "dead_per_minute": round(self.dead_per_minute, 3),
            "failure_rate": None if self.failure_rate is None else round(self.failure_rate, 4),
            "seconds_since_fetch": _round(self.seconds_since_fetch),
            "oldest_waiting_age": _round(self.oldest_waiting_age),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


@dataclass(slots=True)
class Health:
    status: str = "healthy"
    reasons: list[str] = field(default_factory=list)

    def flag(self, status: str, reason: str) -> None:
        self.reasons.append(reason)
        if status == "unhealthy" or self.status == "healthy":
            self.status = status


def _event_time(event: Event) -> float:
    return int(event.id.split("-")[0]) / 1000


async def _oldest_waiting_age(queue: Queue, now: float) -> float | None:
    ids = await queue.list_ids("waiting", limit=OLDEST_SAMPLE)
    jobs = [job for job in await queue.get_jobs(ids) if job is not None]
    if not jobs:
        return None
    return max(0.0, now - min(job.ready_at or job.created_at for job in jobs))


async def collect(queue: Queue, workers: list[WorkerInfo], window: float) -> QueueSignals:
    now = time.time()
    counts = await queue.counts()
    events = await queue.recent_events(since=now - window, count=EVENT_SAMPLE)
    minutes = window / 60
    completed = sum(1 for e in events if e.event == "completed")
    failed = sum(1 for e in events if e.event in FAILURE_EVENTS)
    dead = sum(1 for e in events if e.event == "dead")
    fetches = [e for e in events if e.event == "active"]
    if fetches:
        since_fetch: float | None = max(0.0, now - _event_time(fetches[0]))
    else:
        older = await queue.recent_events(count=EVENT_SAMPLE)
        last = next((e for e in older if e.event == "active"), None)
        since_fetch = None if last is None else max(0.0, now - _event_time(last))
    samples = completed + failed
    return QueueSignals(
        counts=counts, paused=await queue.is_paused(),
        workers=sum(1 for w in workers if queue.name in w.queues),
        completed_per_minute=completed / minutes, failed_per_minute=failed / minutes,
        dead_per_minute=dead / minutes, failure_rate=failed / samples if samples else None,
        samples=samples, seconds_since_fetch=since_fetch,
        oldest_waiting_age=await _oldest_waiting_age(queue, now) if counts["waiting"] else None,
    )  # fmt: skip


def _over(value: float | None, limit: float | None) -> bool:
    return value is not None and limit is not None and value > limit


def judge(signals: QueueSignals, t: HealthThresholds) -> Health:
    """Apply the thresholds; each crossed one adds a reason."""
    health = Health()
    waiting, dead = signals.counts["waiting"], signals.counts["dead"]
    has_work = waiting + signals.counts["active"] > 0
    if _over(waiting, t.waiting_unhealthy):
        health.flag("unhealthy", f"{waiting} jobs waiting (> {t.waiting_unhealthy})")
    elif _over(waiting, t.waiting_degraded):
        health.flag("degraded", f"{waiting} jobs waiting (> {t.waiting_degraded})")
    if _over(dead, t.dead_unhealthy):
        health.flag("unhealthy", f"{dead} dead jobs (> {t.dead_unhealthy})")
    elif _over(dead, t.dead_degraded):
        health.flag("degraded", f"{dead} dead jobs (> {t.dead_degraded})")
    if _over(signals.dead_per_minute, t.dead_per_minute_unhealthy):
        health.flag("unhealthy", f"{signals.dead_per_minute:.1f} jobs died per minute")
    if _over(signals.oldest_waiting_age, t.oldest_waiting_degraded):
        health.flag("degraded", f"oldest waiting job is {signals.oldest_waiting_age:.0f}s old")
    idle = signals.seconds_since_fetch
    limit = t.idle_with_work_degraded
    # A fresh job in a queue never fetched from is not a stall until it has waited long.
    stalled = waiting and not signals.paused and _over(signals.oldest_waiting_age, limit)
    if stalled and (idle is None or _over(idle, limit)):
        health.flag("degraded", f"jobs are waiting and nothing was fetched for {limit:.0f}s")
    if signals.samples >= t.failure_rate_min_samples and signals.failure_rate is not None:
        if _over(signals.failure_rate, t.failure_rate_unhealthy):
            health.flag("unhealthy", f"failure rate {signals.failure_rate:.0%}")
        elif _over(signals.failure_rate, t.failure_rate_degraded):
            health.flag("degraded", f"failure rate {signals.failure_rate:.0%}")
    if t.no_worker_unhealthy and has_work and signals.workers == 0 and not signals.paused:
        health.flag("unhealthy", "jobs are waiting and no live worker serves this queue")
    return health
