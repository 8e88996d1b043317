"""What a limit is: a rate (N starts per sliding window) and the limits of a queue.

Limits are data in Redis (see :class:`conveyor.limiter.Limiter`); these classes validate
them and encode them the way ``scripts/_flow.lua`` reads them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from conveyor.errors import InvalidLimits

MIN_PERIOD = 0.001  # scripts count in milliseconds


def check_count(value: object, field: str) -> int | None:
    """An optional limit: None, or an integer >= 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidLimits(field, f"must be an integer >= 1 or None, got {value!r}")
    if value < 1:
        raise InvalidLimits(field, f"must be >= 1 (None for no limit), got {value}")
    return value


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``limit`` jobs start in any window of ``period`` seconds (sliding window)."""

    limit: int
    period: float = 1.0

    def __post_init__(self) -> None:
        if check_count(self.limit, "rate.limit") is None:
            raise InvalidLimits("rate.limit", "must be an integer >= 1, got None")
        period = self.period
        if isinstance(period, bool) or not isinstance(period, int | float):
            raise InvalidLimits("rate.period", f"must be seconds, got {period!r}")
        if not math.isfinite(period) or period < MIN_PERIOD:
            raise InvalidLimits("rate.period", f"must be finite and >= {MIN_PERIOD}s, got {period}")

    @property
    def period_ms(self) -> int:
        return round(self.period * 1000)

    def encode(self) -> str:
        return f"{self.limit}:{self.period_ms}"

    @classmethod
    def decode(cls, raw: str | None) -> Rate | None:
        if not raw:
            return None
        limit, period_ms = raw.split(":")[:2]
        return cls(int(limit), int(period_ms) / 1000) if int(limit) > 0 else None


def _check_rate(value: object, field: str) -> None:
    if value is not None and not isinstance(value, Rate):
        raise InvalidLimits(field, f"must be a conveyor.limiter.Rate or None, got {value!r}")


@dataclass(frozen=True, slots=True)
class Limits:
    """A queue's flow-control limits; None lifts one.

    ``rate`` and ``concurrency`` hold for the whole queue, across all workers.
    ``group_rate`` and ``group_concurrency`` hold for each group (``JobOptions.group``) on
    its own, unless the group has limits of its own (:meth:`Limiter.set_group`).
    """

    rate: Rate | None = None
    concurrency: int | None = None
    group_rate: Rate | None = None
    group_concurrency: int | None = None

    def __post_init__(self) -> None:
        _check_rate(self.rate, "limits.rate")
        _check_rate(self.group_rate, "limits.group_rate")
        check_count(self.concurrency, "limits.concurrency")
        check_count(self.group_concurrency, "limits.group_concurrency")

    def args(self) -> list[str]:
        """ARGV 2-5 of ``set_limits.lua``: '' for an unset limit."""
        return [
            self.rate.encode() if self.rate else "",
            str(self.concurrency or ""),
            self.group_rate.encode() if self.group_rate else "",
            str(self.group_concurrency or ""),
        ]


@dataclass(frozen=True, slots=True)
class GroupLimits:
    """The limits of one group, overriding the queue's per-group defaults for it."""

    rate: Rate | None = None
    concurrency: int | None = None

    def __post_init__(self) -> None:
        _check_rate(self.rate, "group_limits.rate")
        check_count(self.concurrency, "group_limits.concurrency")

    def encode(self) -> str:
        """``N:period ms:concurrency`` with 0 for a limit that is off."""
        rate = self.rate.encode() if self.rate else "0:0"
        return f"{rate}:{self.concurrency or 0}"

    @classmethod
    def decode(cls, raw: str) -> GroupLimits:
        limit, period_ms, concurrency = raw.split(":")
        return cls(Rate.decode(f"{limit}:{period_ms}"), int(concurrency) or None)
