"""What a schedule is, how it is validated, and which fire times it has.

A schedule fires on a cron expression (in an IANA time zone) or at a fixed interval. Interval
fire times are ``start + k * every``, or multiples of ``every`` since the UNIX epoch when no
start is given, so every scheduler instance computes the same instants without sharing state.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import takewhile
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from conveyor.errors import InvalidJobData, InvalidJobOptions, InvalidSchedule, ValidationError
from conveyor.job import JobOptions
from conveyor.scheduler.cron import Cron
from conveyor.validation import check_job_id, check_job_name, encode_json

MAX_SCHEDULE_ID = 150  # job ids are "<schedule id>-<fire ms>", at most 200 characters
MIN_INTERVAL = 0.01
MAX_CATCH_UP = 1000
TICK = timedelta(microseconds=1)
#: Catch-up looks for the most recent cron fire times in these windows back from now.
CRON_WINDOWS = tuple(timedelta(hours=h) for h in (1, 24, 24 * 32, 24 * 400, 24 * 366 * 9))


class CatchUp(StrEnum):
    """What happens to fire times missed while no scheduler ran (later than ``grace``)."""

    SKIP = "skip"  # missed fire times are dropped
    ONCE = "once"  # one job, for the most recent missed fire time
    ALL = "all"  # one job per missed fire time, the ``catch_up_limit`` most recent


def _positive_int(value: object, name: str, upper: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidSchedule(name, f"must be an integer >= 1, got {value!r}")
    if upper is not None and value > upper:
        raise InvalidSchedule(name, f"must be at most {upper}, got {value}")


def _seconds(value: object, name: str, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidSchedule(name, f"must be a finite number of seconds, got {value!r}")
    if value < minimum:
        raise InvalidSchedule(name, f"must be at least {minimum} s, got {value!r}")
    return float(value)


def _zone(name: object) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise InvalidSchedule("tz", "must be an IANA time zone name such as 'Europe/Berlin'")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidSchedule("tz", f"{name!r} is not a known IANA time zone") from None


def _aware(value: object, name: str, zone: ZoneInfo) -> datetime | None:
    """Naive datetimes are read in the schedule's time zone."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidSchedule(name, f"must be a datetime, got {type(value).__name__}")
    return value if value.tzinfo else value.replace(tzinfo=zone)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A recurring job: ``Schedule("nightly-report", "report", cron="0 2 * * *",
    tz="Europe/Berlin")`` or ``Schedule("poll", "poll", every=30)``.

    ``start``/``end`` bound the fire times (naive values are in ``tz``); ``max_runs`` stops
    it after that many jobs; a fire time later than ``grace`` seconds counts as missed and
    follows ``catch_up``. ``priority``, ``attempts``, ``timeout`` and ``meta`` go to each job.
    """

    id: str
    job: str
    data: Any = None
    cron: str | None = None
    every: float | None = None
    tz: str = "UTC"
    start: datetime | None = None
    end: datetime | None = None
    max_runs: int | None = None
    catch_up: CatchUp | str = CatchUp.SKIP
    catch_up_limit: int = 10
    grace: float = 60.0
    priority: int | None = None
    attempts: int | None = None
    timeout: float | None = None
    meta: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_schedule_id(self.id)
        try:
            check_job_name(self.job)
        except InvalidJobData as exc:
            raise InvalidSchedule("job", exc.message) from None
        encode_json(self.data, "data", 512 * 1024)
        if (self.cron is None) == (self.every is None):
            raise InvalidSchedule("cron", "give exactly one of cron or every")
        if self.cron is not None:
            Cron.parse(self.cron)
        else:
            _seconds(self.every, "every", MIN_INTERVAL)
        zone = _zone(self.tz)
        object.__setattr__(self, "start", _aware(self.start, "start", zone))
        object.__setattr__(self, "end", _aware(self.end, "end", zone))
        if self.start and self.end and self.end <= self.start:
            raise InvalidSchedule("end", "must be after start")
        if self.max_runs is not None:
            _positive_int(self.max_runs, "max_runs")
        try:
            object.__setattr__(self, "catch_up", CatchUp(self.catch_up))
        except ValueError:
            raise InvalidSchedule("catch_up", "must be one of skip, once, all") from None
        _positive_int(self.catch_up_limit, "catch_up_limit", MAX_CATCH_UP)
        _seconds(self.grace, "grace", 0.0)
        self._check_job_options()

    def _check_job_options(self) -> None:
        try:
            self.job_options()
        except InvalidJobOptions as exc:
            raise InvalidSchedule(exc.field, exc.message) from None
        if self.end is not None and self.next_after(self.start or datetime.now(UTC)) is None:
            raise InvalidSchedule("end", "no fire time falls between start (or now) and end")

    def job_options(self) -> JobOptions:
        return JobOptions(
            priority=self.priority, attempts=self.attempts, timeout=self.timeout,
            meta={**self.meta, "schedule": self.id},
        )  # fmt: skip

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    # -- fire times ----------------------------------------------------------------------

    def iter_after(self, after: datetime) -> Iterator[datetime]:
        """Fire instants strictly after ``after`` within [start, end], in order (UTC)."""
        if self.start and after < self.start:
            after = self.start - timedelta(microseconds=1)
        source = self._interval_after(after) if self.every else self._cron_after(after)
        for instant in source:
            if self.end and instant > self.end:
                return
            yield instant

    def next_after(self, after: datetime) -> datetime | None:
        return next(self.iter_after(after), None)

    def _cron_after(self, after: datetime) -> Iterator[datetime]:
        assert self.cron is not None
        return Cron.parse(self.cron).iter_after(after, self.zone)

    def _interval_after(self, after: datetime) -> Iterator[datetime]:
        assert self.every is not None
        step_ms = round(self.every * 1000)
        anchor = ms(self.start) if self.start else 0
        k = math.floor((after.timestamp() * 1000 - anchor) / step_ms) + 1
        while True:
            yield from_ms(anchor + k * step_ms)
            k += 1

    def due(self, first: datetime, now: datetime) -> tuple[list[datetime], datetime | None]:
        """The fire times to enqueue, from the first pending one up to ``now`` per the
        catch-up policy, and the next fire time after ``now`` (None: the schedule is over)."""
        keep = 1 if self.catch_up is CatchUp.ONCE else self.catch_up_limit
        if self.catch_up is CatchUp.SKIP:
            first = max(first, now - timedelta(seconds=self.grace))
        return self._last_fires(first, now, keep), self.next_after(now)

    def _last_fires(self, first: datetime, now: datetime, keep: int) -> list[datetime]:
        """The ``keep`` most recent fire times in [first, now], oldest first, without walking
        a long outage: intervals by arithmetic, cron in windows growing back from now."""
        if first > now:
            return []
        if self.every:
            return self._last_intervals(first, now, keep)
        found: list[datetime] = []
        for window in CRON_WINDOWS:
            begin = max(first, now - window)
            found = list(takewhile(lambda t: t <= now, self.iter_after(begin - TICK)))
            if len(found) >= keep or begin == first:
                break
        return found[-keep:]

    def _last_intervals(self, first: datetime, now: datetime, keep: int) -> list[datetime]:
        assert self.every is not None
        step = round(self.every * 1000)
        anchor = ms(self.start) if self.start else 0
        low = math.ceil((first.timestamp() * 1000 - anchor) / step)
        if self.start:
            low = max(low, 0)
        high = math.floor((now.timestamp() * 1000 - anchor) / step)
        fires = [from_ms(anchor + k * step) for k in range(max(low, high - keep + 1), high + 1)]
        return [f for f in fires if not self.end or f <= self.end]

    # -- storage -------------------------------------------------------------------------

    def to_json(self) -> str:
        """Canonical JSON: an identical declaration gives identical text (upsert is a no-op)."""
        body = {
            "id": self.id, "job": self.job, "data": self.data, "cron": self.cron,
            "every": self.every, "tz": self.tz,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "max_runs": self.max_runs, "catch_up": str(self.catch_up),
            "catch_up_limit": self.catch_up_limit, "grace": self.grace,
            "priority": self.priority, "attempts": self.attempts, "timeout": self.timeout,
            "meta": dict(self.meta),
        }  # fmt: skip
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Schedule:
        raw = json.loads(text)
        for name in ("start", "end"):
            if raw[name]:
                raw[name] = datetime.fromisoformat(raw[name])
        return cls(**raw)


def check_schedule_id(value: object) -> str:
    try:
        check_job_id(value)
    except ValidationError as exc:
        raise InvalidSchedule("id", exc.message) from None
    assert isinstance(value, str)
    if len(value) > MAX_SCHEDULE_ID:
        raise InvalidSchedule("id", f"is {len(value)} characters; the limit is {MAX_SCHEDULE_ID}")
    return value


def ms(instant: datetime) -> int:
    return round(instant.timestamp() * 1000)


def from_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)
