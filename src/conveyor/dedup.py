"""Deduplication and idempotency options of an enqueue.

A :class:`Dedup` names a key and a window; its mode says what a second enqueue with the same
key does while the window is open. An idempotency key makes a retried request safe: the same
key with the same name and data returns the original job, different data is a conflict.
Both are enforced by ``scripts/add_guarded.lua`` in the same atomic step as the enqueue.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from conveyor.errors import InvalidJobOptions

MAX_KEY = 200
DEFAULT_IDEMPOTENCY_TTL = 24 * 3600.0
_KEY_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f]")


class DedupMode(StrEnum):
    #: Drop duplicates while the first job has not finished (nor the window closed).
    KEEP_FIRST = "keep_first"
    #: Replace the pending job's data and/or push its start back; a new job once it started.
    DEBOUNCE = "debounce"
    #: At most one job per window, whatever became of it.
    THROTTLE = "throttle"


def check_key(value: object, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidJobOptions(field, "must be a non-empty string")
    if len(value) > MAX_KEY:
        raise InvalidJobOptions(field, f"is {len(value)} characters; the limit is {MAX_KEY}")
    if _KEY_FORBIDDEN.search(value):
        raise InvalidJobOptions(field, "must not contain control characters")
    return value


def check_window(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidJobOptions(field, f"must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise InvalidJobOptions(field, f"must be a finite number of seconds > 0, got {value!r}")
    if value < 0.001:
        raise InvalidJobOptions(field, "must be at least 1 ms")
    return float(value)


@dataclass(frozen=True, slots=True)
class Dedup:
    """``Dedup("user-42:digest", window=60, mode="debounce")``.

    Debounce replaces the standing job's data when ``replace_data`` and, when
    ``push_back``, moves its start to now plus the new job's delay.
    """

    key: str
    window: float
    mode: DedupMode | str = DedupMode.KEEP_FIRST
    replace_data: bool = True
    push_back: bool = True

    def __post_init__(self) -> None:
        check_key(self.key, "dedup.key")
        check_window(self.window, "dedup.window")
        try:
            object.__setattr__(self, "mode", DedupMode(self.mode))
        except ValueError:
            modes = ", ".join(m.value for m in DedupMode)
            raise InvalidJobOptions("dedup.mode", f"must be one of {modes}") from None
        for name in ("replace_data", "push_back"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidJobOptions(f"dedup.{name}", "must be a bool")


def request_digest(name: str, data: Any) -> str:
    """What an idempotency key is bound to: the job name and its data (key order ignored)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{name}\x00{text}".encode()).hexdigest()
