"""Backoff strategies and the per-exception retry policy."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from conveyor.errors import InvalidJobOptions, JobTimeout, UnrecoverableError

BackoffKind = Literal["fixed", "exponential", "custom"]
#: A custom backoff: (attempts made so far, the exception) -> seconds to wait.
BackoffFunction = Callable[[int, BaseException], float]


def _finite(value: float, field_name: str, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidJobOptions(field_name, f"must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < minimum:
        raise InvalidJobOptions(field_name, f"must be a finite number >= {minimum}, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait before the next attempt.

    ``fixed``: always ``delay``; ``exponential``: ``delay * 2 ** (attempt - 1)`` capped at
    ``max_delay``; ``custom``: a function registered on the worker under ``name``.
    ``jitter`` in [0, 1] subtracts up to that fraction at random, so retries spread out.
    """

    kind: BackoffKind = "exponential"
    delay: float = 1.0
    max_delay: float = 3600.0
    jitter: float = 0.0
    name: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("fixed", "exponential", "custom"):
            raise InvalidJobOptions("backoff.kind", "must be 'fixed', 'exponential' or 'custom'")
        _finite(self.delay, "backoff.delay")
        _finite(self.max_delay, "backoff.max_delay")
        jitter = _finite(self.jitter, "backoff.jitter")
        if jitter > 1:
            raise InvalidJobOptions("backoff.jitter", f"must be within [0, 1], got {jitter}")
        if self.kind == "custom" and not self.name:
            raise InvalidJobOptions("backoff.name", "a custom backoff needs the registered name")

    @classmethod
    def fixed(cls, delay: float, *, jitter: float = 0.0) -> Backoff:
        return cls("fixed", delay, max(delay, 0.0), jitter)

    @classmethod
    def exponential(
        cls, delay: float = 1.0, *, max_delay: float = 3600.0, jitter: float = 0.0
    ) -> Backoff:
        return cls("exponential", delay, max_delay, jitter)

    @classmethod
    def custom(cls, name: str) -> Backoff:
        return cls("custom", name=name)

    def seconds(
        self,
        attempts_made: int,
        error: BaseException,
        custom: Mapping[str, BackoffFunction] | None = None,
        rng: random.Random | None = None,
    ) -> float:
        if self.kind == "fixed":
            base = self.delay
        elif self.kind == "exponential":
            base = min(self.delay * 2 ** max(attempts_made - 1, 0), self.max_delay)
        else:
            function = (custom or {}).get(self.name)
            if function is None:
                raise UnrecoverableError(f"no backoff function registered as {self.name!r}")
            base = _finite(function(attempts_made, error), f"backoff {self.name!r} result")
        if self.jitter:
            base -= base * self.jitter * (rng or random).random()
        return max(base, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "delay": self.delay, "max_delay": self.max_delay,
                "jitter": self.jitter, "name": self.name}  # fmt: skip

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Backoff:
        return cls(raw["kind"], raw["delay"], raw["max_delay"], raw["jitter"], raw.get("name", ""))


@dataclass(frozen=True, slots=True)
class ErrorRule:
    """How to treat one exception type: retry or not, with which backoff and attempts."""

    retry: bool = True
    backoff: Backoff | None = None
    max_attempts: int | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    retry: bool
    delay: float
    reason: str


@dataclass(slots=True)
class RetryPolicy:
    """Per-exception-type retry rules, matched along the exception's MRO.

    >>> RetryPolicy(never=(ValueError,), rules={ConnectionError: ErrorRule(
    ...     backoff=Backoff.exponential(2, jitter=0.5), max_attempts=10)})
    """

    rules: Mapping[type[BaseException], ErrorRule] = field(default_factory=dict)
    never: tuple[type[BaseException], ...] = ()
    backoffs: Mapping[str, BackoffFunction] = field(default_factory=dict)

    def rule_for(self, error: BaseException) -> ErrorRule | None:
        if isinstance(error, (UnrecoverableError, *self.never)):
            return ErrorRule(retry=False)
        for cls in type(error).__mro__:
            if cls in self.rules:
                return self.rules[cls]
        return None

    def decide(
        self, error: BaseException, attempts_made: int, attempts: int, backoff: Backoff
    ) -> Decision:
        """``attempts_made`` counts the attempt that just failed."""
        rule = self.rule_for(error) or ErrorRule()
        kind = type(error).__name__
        if not rule.retry:
            return Decision(False, 0.0, f"{kind} is not retried")
        limit = rule.max_attempts or attempts
        if attempts_made >= limit:
            return Decision(
                False, 0.0, f"attempts exhausted ({attempts_made}/{limit}) after {kind}"
            )
        delay = (rule.backoff or backoff).seconds(attempts_made, error, self.backoffs)
        return Decision(True, delay, kind if not isinstance(error, JobTimeout) else "timeout")
