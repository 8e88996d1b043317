"""Metric history in Redis: per-minute counters and latency percentiles per queue.

Workers aggregate in memory and flush about once a second with one pipelined call that adds
their counts to the minute, hour and day hashes of each queue (the roll-up happens at write
time), so reading an hour or a day costs the same as reading a minute. Each hash expires:
minutes after 48 hours, hours after 30 days, days after a year, so memory is bounded by the
number of queues. Latencies are kept as counts in fixed logarithmic buckets (a 1-1.25-1.6-2-
2.5-3.2-4-5-6.4-8 series per decade), which add up across workers; a percentile is
interpolated inside its bucket, so it is exact to within one bucket (±12 %).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from conveyor.connection import TRANSIENT_ERRORS, Connection
from conveyor.context import JobContext
from conveyor.errors import RetryLater, ValidationError
from conveyor.job import JobOptions
from conveyor.keys import QueueKeys
from conveyor.middleware import Middleware
from conveyor.validation import check_queue_name

log = logging.getLogger("conveyor.history")

_SERIES = (1.0, 1.25, 1.6, 2.0, 2.5, 3.2, 4.0, 5.0, 6.4, 8.0)
#: Upper bounds (seconds) of the latency buckets; one more bucket holds everything above.
BOUNDS: tuple[float, ...] = tuple(
    b for b in (round(m * 10.0**e, 6) for e in range(-3, 4) for m in _SERIES) if b <= 3600
)

COUNTERS = (
    "enqueued", "attempts", "completed", "failed", "retried", "dead", "cancelled",
    "rate_limited", "stalled", "lease_lost",
)  # fmt: skip

Resolution = Literal["minute", "hour", "day"]
#: Seconds per period, retention in seconds, and the most periods one read may return.
RESOLUTIONS: dict[str, tuple[int, int, int]] = {
    "minute": (60, 48 * 3600, 48 * 60),
    "hour": (3600, 30 * 86400, 30 * 24),
    "day": (86400, 366 * 86400, 366),
}
DEFAULT_SPAN = {"minute": 60, "hour": 48, "day": 30}  # periods read when since is omitted
TOTALS = "hist:totals"
MAX_PENDING = 10_000  # (queue, minute) entries kept while Redis is unreachable


class InvalidHistoryQuery(ValidationError):
    """A history read names an unknown resolution or a range it cannot serve."""


_P_BUCKET = tuple(f"p:{i}" for i in range(len(BOUNDS) + 1))  # field names, built once
_W_BUCKET = tuple(f"w:{i}" for i in range(len(BOUNDS) + 1))


def bucket_of(seconds: float) -> int:
    return bisect.bisect_left(BOUNDS, seconds)


def period_key(keys: QueueKeys, resolution: str, index: int) -> str:
    return keys.key(f"hist:{resolution[0]}:{index}")


#: Every hash field a tally can hold; a tally is a list of counts in this order.
FIELDS = (*COUNTERS, "p_sum_ms", "w_sum_ms", *_P_BUCKET, *_W_BUCKET)
_INDEX = {name: i for i, name in enumerate(FIELDS)}
_ATTEMPTS, _P_SUM, _W_SUM = _INDEX["attempts"], _INDEX["p_sum_ms"], _INDEX["w_sum_ms"]
_P0, _W0 = _INDEX[_P_BUCKET[0]], _INDEX[_W_BUCKET[0]]
_OUTCOME = {name: _INDEX[name] for name in ("completed", "cancelled")}
_FAILED, _RETRIED, _DEAD = _INDEX["failed"], _INDEX["retried"], _INDEX["dead"]
_RATE_LIMITED = _INDEX["rate_limited"]
_COMPLETED = _INDEX["completed"]


@dataclass(slots=True)
class _Tally:
    """What one process saw for one queue in one minute: counts by :data:`FIELDS` index
    (a list, because a job's hook adds to six of them)."""

    values: list[int] = field(default_factory=lambda: [0] * len(FIELDS))

    def add(self, name: str, amount: int = 1) -> None:
        self.values[_INDEX[name]] += amount

    @property
    def counts(self) -> dict[str, int]:
        return {FIELDS[i]: v for i, v in enumerate(self.values) if v}

    def merge(self, other: _Tally) -> None:
        for i, amount in enumerate(other.values):
            self.values[i] += amount


def _add_attempt(values: list[int], ctx: JobContext, duration: float) -> None:
    values[_ATTEMPTS] += 1
    values[_P0 + bisect.bisect_left(BOUNDS, duration)] += 1
    values[_P_SUM] += round(duration * 1000)
    wait = ctx.first_wait
    if wait is not None:
        values[_W0 + bisect.bisect_left(BOUNDS, wait)] += 1
        values[_W_SUM] += round(wait * 1000)


class HistoryRecorder(Middleware):
    """Records the metric history; give it to the worker (and to producers' queues).

    The worker starts and stops the flush task; a producer-only process starts it on the
    first enqueue and should ``await recorder.aclose()`` before exiting.
    """

    def __init__(self, connection: Connection, *, flush_interval: float = 1.0) -> None:
        if not 0.05 <= flush_interval <= 60:
            raise InvalidHistoryQuery("flush_interval", "must be within [0.05, 60] seconds")
        self.connection = connection
        self.flush_interval = flush_interval
        self._pending: dict[tuple[str, int], _Tally] = {}
        self._last_fetch: dict[str, int] = {}
        self._keys: dict[str, QueueKeys] = {}
        self._task: asyncio.Task[None] | None = None

    # -- recording (cheap: in memory) --------------------------------------------------

    def _tally(self, queue: str, now: float) -> _Tally:
        slot = (queue, int(now // 60))
        tally = self._pending.get(slot)
        if tally is None:
            tally = self._pending[slot] = _Tally()
        return tally

    def record(self, queue: str, name: str, amount: int = 1, now: float | None = None) -> None:
        self._tally(queue, time.time() if now is None else now).add(name, amount)

    def record_latency(self, queue: str, kind: str, seconds: float, now: float) -> None:
        """``kind`` is ``p`` (processing) or ``w`` (wait)."""
        tally = self._tally(queue, now)
        tally.add(f"{kind}:{bucket_of(seconds)}")
        tally.add(f"{kind}_sum_ms", round(seconds * 1000))

    # -- middleware hooks -------------------------------------------------------------

    def before_enqueue(self, queue: str, name: str, options: JobOptions) -> JobOptions:
        self.record(queue, "enqueued")
        self._ensure_flusher()
        return options

    # No around_job: everything is recorded when the attempt ends, with one tally lookup.
    def job_finished(
        self, ctx: JobContext, outcome: str, duration: float, error: BaseException | None
    ) -> None:
        now = time.time()
        values = self._tally(ctx.queue, now).values
        if outcome in _OUTCOME:
            values[_OUTCOME[outcome]] += 1
        elif isinstance(error, RetryLater):
            values[_RATE_LIMITED] += 1
        else:
            values[_FAILED] += 1
            values[_RETRIED if outcome == "retry" else _DEAD] += 1
        _add_attempt(values, ctx, duration)

    def jobs_completed(self, completed: Sequence[tuple[JobContext, float]]) -> None:
        queue, minute, values = "", -1.0, []
        for ctx, duration in completed:
            finished = ctx.started_at + duration
            if ctx.queue != queue or finished // 60 != minute:
                queue, minute = ctx.queue, finished // 60
                values = self._tally(queue, finished).values
            values[_COMPLETED] += 1
            _add_attempt(values, ctx, duration)

    def jobs_fetched(self, queue: str, count: int) -> None:
        self._last_fetch[queue] = int(time.time() * 1000)

    def lease_lost(self, queue: str, job_id: str) -> None:
        self.record(queue, "lease_lost")

    def stalled(self, queue: str, requeued: int, dead: int) -> None:
        self.record(queue, "stalled", requeued + dead)

    async def worker_started(self, worker_id: str, queues: Sequence[str]) -> None:
        self._ensure_flusher()

    async def worker_stopped(self, worker_id: str, queues: Sequence[str]) -> None:
        await self.aclose()

    # -- flushing ---------------------------------------------------------------------

    def _ensure_flusher(self) -> None:
        if self._task is None or self._task.done():
            with contextlib.suppress(RuntimeError):  # no running loop: a sync producer
                self._task = asyncio.get_running_loop().create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            await self.flush()

    async def aclose(self) -> None:
        """Stop the flush task and write what is left."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def flush(self) -> None:
        """Write everything recorded so far in one pipelined round trip."""
        pending, self._pending = self._pending, {}
        fetches, self._last_fetch = self._last_fetch, {}
        if not pending and not fetches:
            return
        pipe = self.connection.client.pipeline(transaction=False)
        for (queue, minute), tally in pending.items():
            self._write(pipe, self._keys_of(queue), minute, tally.counts)
        for queue, when in fetches.items():
            pipe.hset(self._keys_of(queue).key(TOTALS), "last_fetch_ms", when)
        try:
            await pipe.execute()
        except TRANSIENT_ERRORS as exc:
            log.warning("metric history not written (%s); keeping it for the next flush", exc)
            self._restore(pending, fetches)

    def _keys_of(self, queue: str) -> QueueKeys:
        keys = self._keys.get(queue)
        if keys is None:
            keys = self._keys[queue] = QueueKeys(queue)
        return keys

    @staticmethod
    def _write(pipe: Any, keys: QueueKeys, minute: int, counts: Mapping[str, int]) -> None:
        for resolution, (period, ttl, _) in RESOLUTIONS.items():
            key = period_key(keys, resolution, minute * 60 // period)
            for name, amount in counts.items():
                pipe.hincrby(key, name, amount)
            pipe.expire(key, ttl + period)
        totals = keys.key(TOTALS)
        for name, amount in counts.items():
            if not name.startswith("w"):  # wait buckets are per period only
                pipe.hincrby(totals, name, amount)

    def _restore(self, pending: dict[tuple[str, int], _Tally], fetches: dict[str, int]) -> None:
        for slot, tally in pending.items():
            if slot in self._pending:
                self._pending[slot].merge(tally)
            elif len(self._pending) < MAX_PENDING:
                self._pending[slot] = tally
        for queue, when in fetches.items():
            self._last_fetch.setdefault(queue, when)


# -- reading --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Latency:
    """Latency of the jobs of one period, in seconds (None when there were none)."""

    count: int
    mean: float | None
    p50: float | None
    p95: float | None
    p99: float | None


@dataclass(frozen=True, slots=True)
class Point:
    """One period of one queue: ``start`` is UNIX seconds, ``seconds`` its length."""

    start: int
    seconds: int
    counts: dict[str, int]
    processing: Latency
    wait: Latency

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(buckets: Mapping[int, int], total: int, q: float) -> float | None:
    """The ``q`` quantile of bucketed samples, interpolated inside its bucket."""
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for index in sorted(buckets):
        count = buckets[index]
        if count and seen + count >= rank:
            if index >= len(BOUNDS):
                return BOUNDS[-1]  # the overflow bucket has no upper bound to interpolate to
            lower = BOUNDS[index - 1] if index else 0.0
            return lower + (BOUNDS[index] - lower) * (rank - seen) / count
        seen += count
    return BOUNDS[-1]


def latency(raw: Mapping[str, str], kind: str) -> Latency:
    prefix = kind + ":"
    buckets = {int(k[len(prefix) :]): int(v) for k, v in raw.items() if k.startswith(prefix)}
    total = sum(buckets.values())
    mean = int(raw.get(f"{kind}_sum_ms", 0)) / 1000 / total if total else None
    p50, p95, p99 = (percentile(buckets, total, q) for q in (0.5, 0.95, 0.99))
    return Latency(total, mean, p50, p95, p99)


def to_point(start: int, seconds: int, raw: Mapping[str, str]) -> Point:
    counts = {name: int(raw.get(name, 0)) for name in COUNTERS}
    return Point(start, seconds, counts, latency(raw, "p"), latency(raw, "w"))


def _window(
    resolution: str, since: float | None, until: float | None, now: float
) -> tuple[int, int, int]:
    if resolution not in RESOLUTIONS:
        raise InvalidHistoryQuery(
            "resolution", f"must be one of {', '.join(RESOLUTIONS)}, got {resolution!r}"
        )
    period, retention, most = RESOLUTIONS[resolution]
    for name, value in (("since", since), ("until", until)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise InvalidHistoryQuery(name, "must be UNIX seconds (a number) or None")
    last = int((now if until is None else until) // period)
    first = last - DEFAULT_SPAN[resolution] + 1 if since is None else int(since // period)
    if first > last:
        raise InvalidHistoryQuery("since", "must not be later than until")
    if last - first + 1 > most:
        raise InvalidHistoryQuery(
            "since", f"asks for {last - first + 1} {resolution}s; at most {most} per read"
        )
    first = max(first, int((now - retention) // period))
    return period, first, last


async def read(
    connection: Connection,
    queue: str,
    *,
    resolution: Resolution | str = "minute",
    since: float | None = None,
    until: float | None = None,
) -> list[Point]:
    """The history of ``queue``, one :class:`Point` per period from ``since`` to ``until``
    (UNIX seconds, inclusive; periods with no activity are zeros). Without ``since``: the
    last hour of minutes, two days of hours or 30 days of days."""
    check_queue_name(queue)
    period, first, last = _window(resolution, since, until, time.time())
    keys = QueueKeys(queue)
    indexes = range(first, last + 1)
    pipe = connection.client.pipeline(transaction=False)
    for index in indexes:
        pipe.hgetall(period_key(keys, resolution, index))
    rows = await pipe.execute() if indexes else []
    return [to_point(i * period, period, row) for i, row in zip(indexes, rows, strict=True)]


async def totals(connection: Connection, queues: Iterable[str]) -> dict[str, dict[str, str]]:
    """The all-time totals hash of each queue (counters, processing buckets, last fetch)."""
    names = [check_queue_name(q) for q in queues]
    pipe = connection.client.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(QueueKeys(name).key(TOTALS))
    rows = await pipe.execute() if names else []
    return dict(zip(names, rows, strict=True))
