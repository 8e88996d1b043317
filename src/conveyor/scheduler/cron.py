"""Five-field cron expressions: parsing, validation and next fire times in a time zone.

Fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or jan-dec), day of week
(0-7 or sun-sat; 0 and 7 are Sunday). Each field is ``*``, a value, a range ``a-b``, a list
``a,b`` and any of those with a step ``/n``. As in classic cron, when both day fields are
restricted a day matches if either does. ``@hourly``, ``@daily``, ``@weekly``, ``@monthly``
and ``@yearly`` are shorthands.

Time zones and daylight saving (the documented rule, see ``docs/scheduling.md``): the
expression is matched against local wall-clock time. A wall time that does not exist (the
hour skipped when clocks spring forward) fires once, shifted forward by the gap (02:30 becomes
03:30); a wall time that happens twice (clocks fall back) fires once, at its first
occurrence. Fire times that land on the same instant are one fire time.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from conveyor.errors import InvalidSchedule

FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day_of_month", 1, 31),
    ("month", 1, 12),
    ("day_of_week", 0, 7),
)
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}  # fmt: skip
#: A valid expression fires at least once in any 8 years (29 February skips 2100).
SEARCH_DAYS = 366 * 9


def _value(text: str, name: str, low: int, high: int) -> int:
    names = MONTHS if name == "month" else DAYS if name == "day_of_week" else ()
    lowered = text.lower()
    if lowered in names:
        return names.index(lowered) + (1 if name == "month" else 0)
    if not text.isdigit():
        raise InvalidSchedule(f"cron.{name}", f"{text!r} is not a number within [{low}, {high}]")
    value = int(text)
    if not low <= value <= high:
        raise InvalidSchedule(f"cron.{name}", f"{value} is out of range [{low}, {high}]")
    return value


def _part(part: str, name: str, low: int, high: int) -> set[int]:
    base, _, step_text = part.partition("/")
    step = 1
    if step_text:
        if not step_text.isdigit() or int(step_text) == 0:
            raise InvalidSchedule(f"cron.{name}", f"step {step_text!r} must be an integer >= 1")
        step = int(step_text)
    if base == "*":
        first, last = low, high
    elif "-" in base:
        a, _, b = base.partition("-")
        first, last = _value(a, name, low, high), _value(b, name, low, high)
        if first > last:
            raise InvalidSchedule(f"cron.{name}", f"range {base!r} runs backwards")
    else:
        first = _value(base, name, low, high)
        last = high if step_text else first
    return set(range(first, last + 1, step))


def _field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    if not text:
        raise InvalidSchedule(f"cron.{name}", "is empty")
    values: set[int] = set()
    for part in text.split(","):
        values |= _part(part, name, low, high)
    return frozenset(values)


@dataclass(frozen=True, slots=True)
class Cron:
    """A parsed expression; :meth:`next_after` gives fire times as aware UTC datetimes."""

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Monday, as datetime.weekday()
    day_restricted: bool
    weekday_restricted: bool

    @classmethod
    def parse(cls, expression: str) -> Cron:
        if not isinstance(expression, str):
            raise InvalidSchedule("cron", "must be a string like '*/5 * * * *'")
        text = MACROS.get(expression.strip().lower(), expression.strip())
        parts = text.split()
        if len(parts) != 5:
            raise InvalidSchedule(
                "cron", f"needs 5 fields (minute hour day month weekday), got {len(parts)}"
            )
        sets = [_field(p, n, lo, hi) for p, (n, lo, hi) in zip(parts, FIELDS, strict=True)]
        cron_weekdays = {7 if d == 0 else d for d in sets[4]}  # 1 = Monday ... 7 = Sunday
        cron = cls(
            expression=expression,
            minutes=tuple(sorted(sets[0])),
            hours=tuple(sorted(sets[1])),
            days=sets[2],
            months=sets[3],
            weekdays=frozenset(d - 1 for d in cron_weekdays),
            day_restricted=parts[2] != "*",
            weekday_restricted=parts[4] != "*",
        )
        cron._check_fires()
        return cron

    def _check_fires(self) -> None:
        """Refuse an expression whose day-of-month never occurs in its months (30 February)."""
        if not self.day_restricted or self.weekday_restricted:
            return
        longest = {m: calendar.monthrange(2024, m)[1] for m in self.months}  # 2024: leap
        if not any(d <= longest[m] for m in self.months for d in self.days):
            raise InvalidSchedule(
                "cron.day_of_month",
                f"{self.expression!r} never fires: no chosen day exists in the chosen months",
            )

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        by_day = day.day in self.days
        by_weekday = day.weekday() in self.weekdays
        if self.day_restricted and self.weekday_restricted:
            return by_day or by_weekday
        return by_day and by_weekday

    def _day_instants(self, day: date, zone: ZoneInfo) -> list[datetime]:
        """Every fire instant of one local day, sorted, per the DST rule of this module."""
        instants = {
            datetime.combine(day, time(h, m), zone).astimezone(UTC)  # fold=0: first/shifted
            for h in self.hours
            for m in self.minutes
        }
        return sorted(instants)

    def iter_after(self, after: datetime, zone: ZoneInfo) -> Iterator[datetime]:
        """Fire instants strictly after ``after`` (aware), in order, for up to 9 years."""
        start = after.astimezone(zone).date() - timedelta(days=1)  # a gap may shift a day
        for offset in range(SEARCH_DAYS):
            day = start + timedelta(days=offset)
            if self.matches_day(day):
                for instant in self._day_instants(day, zone):
                    if instant > after:
                        yield instant

    def next_after(self, after: datetime, zone: ZoneInfo) -> datetime | None:
        """The first fire instant strictly after ``after`` (aware), or None within 9 years."""
        return next(self.iter_after(after, zone), None)
