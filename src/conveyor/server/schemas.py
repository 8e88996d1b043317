"""Request bodies of the API, validated strictly (unknown fields are errors)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from conveyor.dedup import DEFAULT_IDEMPOTENCY_TTL, MAX_KEY, Dedup
from conveyor.flows import FlowJob
from conveyor.job import MAX_ATTEMPTS, MAX_PRIORITY, MIN_PRIORITY, JobOptions
from conveyor.retry import Backoff
from conveyor.validation import MAX_GROUP

MAX_BULK = 1000
MAX_SECONDS = 10**9  # ~31 years: anything beyond is a typo, not a plan


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class BackoffIn(Strict):
    kind: Literal["fixed", "exponential"] = "exponential"
    delay: float = Field(default=1.0, ge=0, le=MAX_SECONDS)
    max_delay: float = Field(default=3600.0, ge=0, le=MAX_SECONDS)
    jitter: float = Field(default=0.0, ge=0, le=1)


class DedupIn(Strict):
    """Drop, merge or throttle jobs that share ``key`` within ``window`` seconds."""

    key: str = Field(min_length=1, max_length=MAX_KEY)
    window: float = Field(gt=0, le=MAX_SECONDS)
    mode: Literal["keep_first", "debounce", "throttle"] = "keep_first"
    replace_data: bool = True
    push_back: bool = True

    def to_dedup(self) -> Dedup:
        return Dedup(self.key, self.window, self.mode, self.replace_data, self.push_back)


class OptionsIn(Strict):
    job_id: str | None = Field(default=None, min_length=1, max_length=200)
    attempts: int | None = Field(default=None, ge=1, le=MAX_ATTEMPTS)
    backoff: BackoffIn | None = None
    timeout: float | None = Field(default=None, gt=0, le=MAX_SECONDS)
    priority: int | None = Field(default=None, ge=MIN_PRIORITY, le=MAX_PRIORITY)
    delay: float | None = Field(default=None, ge=0, le=MAX_SECONDS)
    meta: dict[str, str] = Field(default_factory=dict, max_length=50)
    dedup: DedupIn | None = None
    #: A client's retry of the same request (same key, name and data) returns the first job.
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=MAX_KEY)
    idempotency_ttl: float = Field(default=DEFAULT_IDEMPOTENCY_TTL, gt=0, le=MAX_SECONDS)
    group: str | None = Field(default=None, min_length=1, max_length=MAX_GROUP)
    deadline: float | None = Field(default=None, gt=0, le=MAX_SECONDS)

    def to_options(self) -> JobOptions:
        backoff = None
        if self.backoff is not None:
            b = self.backoff
            backoff = Backoff(b.kind, b.delay, b.max_delay, b.jitter)
        return JobOptions(
            job_id=self.job_id, attempts=self.attempts, backoff=backoff, timeout=self.timeout,
            priority=self.priority, delay=self.delay, meta=dict(self.meta),
            dedup=self.dedup.to_dedup() if self.dedup else None,
            idempotency_key=self.idempotency_key, idempotency_ttl=self.idempotency_ttl,
            group=self.group, deadline=self.deadline,
        )  # fmt: skip


class JobIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    data: Any = None
    options: OptionsIn = Field(default_factory=OptionsIn)


class BulkIn(Strict):
    jobs: list[JobIn] = Field(min_length=1, max_length=MAX_BULK)


class PriorityIn(Strict):
    priority: int = Field(ge=MIN_PRIORITY, le=MAX_PRIORITY)


class RetryIn(Strict):
    """Optionally replace the job's data before it runs again."""

    data: Any = None
    replace_data: bool = False


class DeadFilterIn(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    error_type: str | None = Field(default=None, min_length=1, max_length=200)
    since: float | None = Field(default=None, ge=0, le=10**11)
    until: float | None = Field(default=None, ge=0, le=10**11)
    limit: int | None = Field(default=None, ge=1, le=100_000)


class CleanIn(Strict):
    state: Literal["completed", "dead", "cancelled"]
    older_than: float = Field(ge=0, le=MAX_SECONDS)
    limit: int = Field(default=10_000, ge=1, le=100_000)


class KeyIn(Strict):
    name: str = Field(min_length=1, max_length=100)
    role: Literal["viewer", "operator", "admin"]
    queues: list[str] = Field(default_factory=list, max_length=100)


class FlowJobIn(Strict):
    """One job of a flow: it runs after all of its ``children`` finished."""

    name: str = Field(min_length=1, max_length=200)
    queue: str = Field(min_length=1, max_length=200)
    data: Any = None
    options: OptionsIn = Field(default_factory=OptionsIn)
    children: list[FlowJobIn] = Field(default_factory=list, max_length=1000)
    on_failure: Literal["fail", "ignore", "continue"] = "fail"

    def to_flow_job(self) -> FlowJob:
        return FlowJob(
            self.name, self.queue, self.data, self.options.to_options(),
            [child.to_flow_job() for child in self.children], self.on_failure,
        )  # fmt: skip

    def queues(self) -> set[str]:
        return {self.queue}.union(*(child.queues() for child in self.children))
