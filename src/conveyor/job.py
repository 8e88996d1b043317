"""What a job is: its options, its states, and the record an operator reads back."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from conveyor.dedup import DEFAULT_IDEMPOTENCY_TTL, Dedup, check_key, check_window
from conveyor.errors import InvalidJobOptions
from conveyor.retry import Backoff
from conveyor.validation import check_group, check_job_id

MIN_PRIORITY, MAX_PRIORITY = -1000, 1000
MAX_ATTEMPTS = 1000
META_KEYS = ("tenant", "user", "source", "correlation_id")


class JobState(StrEnum):
    WAITING = "waiting"
    DELAYED = "delayed"  # includes jobs waiting to retry
    ACTIVE = "active"
    COMPLETED = "completed"
    DEAD = "dead"
    CANCELLED = "cancelled"
    #: A flow parent waiting for its children to finish (see :mod:`conveyor.flows`).
    WAITING_CHILDREN = "waiting-children"


#: States listed from a sorted set: the set's key suffix is the state name.
LISTABLE_STATES = tuple(JobState)


def _check_number(value: object, name: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidJobOptions(name, f"must be a number of seconds, got {type(value).__name__}")
    if not math.isfinite(value):
        raise InvalidJobOptions(name, f"must be finite, got {value!r}")
    if positive and value <= 0:
        raise InvalidJobOptions(name, f"must be > 0, got {value!r}")
    if value < 0:
        raise InvalidJobOptions(name, f"must be >= 0, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class JobOptions:
    """Options of one job; unset fields take the queue's defaults (see :meth:`merged`).

    ``priority``: integer in [-1000, 1000], higher runs first. ``delay`` and ``timeout`` are
    seconds. ``meta`` carries tenant, user, source and correlation id (strings).
    """

    job_id: str | None = None
    attempts: int | None = None
    backoff: Backoff | None = None
    timeout: float | None = None
    priority: int | None = None
    delay: float | None = None
    meta: Mapping[str, str] = field(default_factory=dict)
    #: Deduplication (see :class:`conveyor.Dedup`); per job, never taken from defaults.
    dedup: Dedup | None = None
    #: Same key and same name + data returns the original job; different data conflicts.
    idempotency_key: str | None = None
    #: Seconds the idempotency key is remembered.
    idempotency_ttl: float = DEFAULT_IDEMPOTENCY_TTL
    #: Flow-control group (a tenant, recipient, API host): groups are served round-robin
    #: and per-group limits apply to them (see :mod:`conveyor.limiter`).
    group: str | None = None
    #: Seconds after enqueue by which the job must have started; else it goes to dead.
    deadline: float | None = None

    def __post_init__(self) -> None:
        if self.job_id is not None:
            check_job_id(self.job_id)
        if self.attempts is not None:
            if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
                raise InvalidJobOptions("attempts", "must be an integer")
            if not 1 <= self.attempts <= MAX_ATTEMPTS:
                raise InvalidJobOptions(
                    "attempts", f"must be within [1, {MAX_ATTEMPTS}], got {self.attempts}"
                )
        if self.backoff is not None and not isinstance(self.backoff, Backoff):
            raise InvalidJobOptions("backoff", "must be a conveyor.Backoff")
        if self.timeout is not None:
            _check_number(self.timeout, "timeout", positive=True)
        if self.priority is not None:
            if isinstance(self.priority, bool) or not isinstance(self.priority, int):
                raise InvalidJobOptions("priority", f"must be an integer, got {self.priority!r}")
            if not MIN_PRIORITY <= self.priority <= MAX_PRIORITY:
                raise InvalidJobOptions(
                    "priority",
                    f"must be within [{MIN_PRIORITY}, {MAX_PRIORITY}], got {self.priority}",
                )
        if self.delay is not None:
            _check_number(self.delay, "delay")
        if self.dedup is not None and not isinstance(self.dedup, Dedup):
            raise InvalidJobOptions("dedup", "must be a conveyor.Dedup")
        if self.idempotency_key is not None:
            check_key(self.idempotency_key, "idempotency_key")
        if self.idempotency_ttl != DEFAULT_IDEMPOTENCY_TTL:
            check_window(self.idempotency_ttl, "idempotency_ttl")
        if self.group is not None:
            check_group(self.group)
        if self.deadline is not None:
            _check_number(self.deadline, "deadline", positive=True)
        for key, value in self.meta.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise InvalidJobOptions(f"meta.{key}", "meta keys and values must be strings")
            if len(value) > 1000:
                raise InvalidJobOptions(f"meta.{key}", "must be at most 1000 characters")

    def merged(self, defaults: JobOptions) -> JobOptions:
        """These options with every unset field taken from ``defaults``."""
        return JobOptions(
            job_id=self.job_id,
            attempts=self.attempts if self.attempts is not None else defaults.attempts,
            backoff=self.backoff if self.backoff is not None else defaults.backoff,
            timeout=self.timeout if self.timeout is not None else defaults.timeout,
            priority=self.priority if self.priority is not None else defaults.priority,
            delay=self.delay if self.delay is not None else defaults.delay,
            meta={**defaults.meta, **self.meta},
            dedup=self.dedup,
            idempotency_key=self.idempotency_key,
            idempotency_ttl=self.idempotency_ttl,
            group=self.group if self.group is not None else defaults.group,
            deadline=self.deadline if self.deadline is not None else defaults.deadline,
        )

    def with_id(self, job_id: str) -> JobOptions:
        return replace(self, job_id=job_id)


#: What a queue uses when neither the job nor the queue says otherwise.
BUILTIN_DEFAULTS = JobOptions(
    attempts=3, backoff=Backoff.exponential(1.0, max_delay=3600.0, jitter=0.2),
    timeout=None, priority=0, delay=0.0,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Retention:
    """Keep at most ``count`` finished jobs of a kind, none older than ``age`` seconds.

    ``None`` for either means no bound on it; both ``None`` turns retention off.
    """

    count: int | None
    age: float | None

    def __post_init__(self) -> None:
        if self.count is not None and (not isinstance(self.count, int) or self.count < 0):
            raise InvalidJobOptions("retention.count", "must be a non-negative integer or None")
        if self.age is not None:
            _check_number(self.age, "retention.age")

    def args(self) -> list[int]:
        """Script arguments: keep count, keep age in ms (-1 = unbounded)."""
        return [
            -1 if self.count is None else self.count,
            -1 if self.age is None else int(self.age * 1000),
        ]


KEEP_COMPLETED = Retention(count=1_000, age=24 * 3600)
KEEP_DEAD = Retention(count=10_000, age=7 * 24 * 3600)


@dataclass(slots=True)
class Attempt:
    """One past attempt, as kept in the job's history."""

    outcome: str
    worker: str
    started: float | None
    finished: float | None
    error_type: str | None
    message: str | None
    traceback: str | None

    @classmethod
    def from_record(cls, raw: Mapping[str, Any]) -> Attempt:
        error = raw.get("error") or {}
        started, finished = raw.get("started"), raw.get("finished")
        return cls(
            outcome=str(raw.get("outcome", "")),
            worker=str(raw.get("worker", "")),
            started=started / 1000 if started else None,
            finished=finished / 1000 if finished else None,
            error_type=error.get("type"),
            message=error.get("message"),
            traceback=error.get("traceback"),
        )


@dataclass(slots=True)
class Job:
    """A job as stored in Redis. Times are UNIX seconds."""

    id: str
    queue: str
    name: str
    data: Any
    state: JobState
    options: dict[str, Any]
    meta: dict[str, str]
    created_at: float
    attempts_made: int = 0
    stalls: int = 0
    priority: int = 0
    worker: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    ready_at: float | None = None
    progress: Any = None
    result: Any = None
    error: dict[str, Any] | None = None
    history: list[Attempt] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    cancel_requested: bool = False
    #: Flow-control group, and seconds after enqueue by which the job had to start.
    group: str | None = None
    deadline: float | None = None


@dataclass(frozen=True, slots=True)
class Enqueued:
    """What :meth:`Queue.add` returns: the id of the job that stands, and whether this call
    created it.

    ``outcome`` says why: ``created``, ``exists`` (that job id was taken), ``duplicate``
    (keep-first dedup), ``throttled``, ``debounced`` (the standing job was updated) or
    ``idempotent`` (a replay of an idempotency key).
    """

    id: str
    created: bool
    outcome: str = ""

    def __post_init__(self) -> None:
        if not self.outcome:
            object.__setattr__(self, "outcome", "created" if self.created else "exists")
