"""Every error Conveyor raises on purpose derives from :class:`ConveyorError`.

Errors caused by bad input derive from :class:`ValidationError` and name the field
that has to change, so callers can show a precise message.
"""

from __future__ import annotations


class ConveyorError(Exception):
    """Base class of all Conveyor errors."""


class ValidationError(ConveyorError, ValueError):
    """Bad input: ``field`` names what to fix, the message says how."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InvalidQueueName(ValidationError):
    """The queue name cannot be used as (part of) a Redis key."""


class InvalidJobId(ValidationError):
    """The custom job id is empty, too long or contains a forbidden character."""


class InvalidJobOptions(ValidationError):
    """A job option is out of range or of the wrong type."""


class InvalidJobData(ValidationError):
    """Job data is not strict JSON, too deep or too large."""


class PayloadTooLarge(InvalidJobData):
    """Serialised job data exceeds the configured size limit."""


class ConfigError(ValidationError):
    """A setting is invalid; raised at startup."""


class JobNotFound(ConveyorError, LookupError):
    """No job with that id exists in that queue (it may have been trimmed by retention)."""

    def __init__(self, queue: str, job_id: str) -> None:
        super().__init__(f"no job {job_id!r} in queue {queue!r}")
        self.queue = queue
        self.job_id = job_id


class InvalidStateTransition(ConveyorError):
    """The job is not in a state that allows the requested operation."""

    def __init__(
        self, job_id: str, state: str | None, operation: str, hint: str | None = None
    ) -> None:
        message = f"cannot {operation} job {job_id!r} while it is {state or 'missing'}"
        super().__init__(f"{message}: {hint}" if hint else message)
        self.job_id = job_id
        self.state = state
        self.operation = operation


class LeaseLost(ConveyorError):
    """The worker no longer holds the job's lease: another attempt owns it (fencing)."""


class UnrecoverableError(ConveyorError):
    """Raise from a handler to send the job straight to dead, skipping remaining attempts."""


class JobCancelled(ConveyorError):
    """Raised inside a handler's task when an operator cancels the running job."""


class JobTimeout(ConveyorError):
    """The handler ran longer than the job's timeout."""


class RetryLater(ConveyorError):
    """Raise from a handler to retry after ``delay`` seconds without using up an attempt.

    Meant for remote rate limits (HTTP 429 with Retry-After).
    """

    def __init__(self, delay: float, reason: str = "rate limited") -> None:
        super().__init__(f"{reason}; retry after {delay}s")
        self.delay = delay
        self.reason = reason


class InvalidLimits(ValidationError):
    """A rate limit, window or concurrency limit is zero, negative or of the wrong type."""


class RateLimited(RetryLater):
    """Raise from a handler when the remote side rate-limits it (HTTP 429, Retry-After).

    The job retries after ``retry_after`` seconds without using up an attempt. With
    ``throttle_group`` (the default) its whole flow-control group (``JobOptions.group``) is
    held back as long, so the group's other jobs do not hit the same wall.
    """

    def __init__(
        self,
        retry_after: float,
        reason: str = "rate limited by the remote side",
        *,
        throttle_group: bool = True,
    ) -> None:
        if (
            isinstance(retry_after, bool)
            or not isinstance(retry_after, int | float)
            or not 0 <= retry_after < float("inf")
        ):
            raise InvalidLimits("retry_after", f"must be finite seconds >= 0, got {retry_after!r}")
        super().__init__(float(retry_after), reason)
        self.retry_after = float(retry_after)
        self.throttle_group = throttle_group


class RedisUnavailable(ConveyorError, ConnectionError):
    """Redis could not be reached within the reconnect budget."""


class QueueFull(ConveyorError):
    """Admission refused: the queue (or one key of it) already holds its maximum of waiting jobs.

    ``field`` names the limit that was hit (``max_waiting`` or ``max_waiting_per_key``);
    nothing was written.
    """

    def __init__(self, queue: str, field: str, waiting: int, limit: int, key: str = "") -> None:
        where = f"key {key!r} of queue {queue!r}" if key else f"queue {queue!r}"
        super().__init__(
            f"{field}: {where} already has {waiting} waiting jobs (limit {limit}); "
            "retry later or raise the limit"
        )
        self.queue = queue
        self.field = field
        self.waiting = waiting
        self.limit = limit
        self.key = key


class IdempotencyConflict(ValidationError):
    """The idempotency key was already used for a job with different name or data."""

    def __init__(self, key: str, job_id: str) -> None:
        super().__init__(
            "idempotency_key",
            f"{key!r} was already used for job {job_id!r} with different name or data; "
            "use a new key for a different request",
        )
        self.key = key
        self.job_id = job_id


class InvalidSchedule(ValidationError):
    """A schedule's cron expression, interval, time zone, dates or limits are unusable."""


class ScheduleNotFound(ConveyorError, LookupError):
    """No schedule with that id exists in that queue."""

    def __init__(self, queue: str, schedule_id: str) -> None:
        super().__init__(f"no schedule {schedule_id!r} in queue {queue!r}")
        self.queue = queue
        self.schedule_id = schedule_id


class InvalidFlow(ValidationError):
    """A flow is malformed: a cycle, a job listed twice, a missing queue, an unsupported option."""


class FlowConflict(ConveyorError):
    """A job id of the flow already exists in its queue; nothing of the flow was written."""

    def __init__(self, queue: str, job_id: str) -> None:
        super().__init__(f"job {job_id!r} already exists in queue {queue!r}; flow not added")
        self.queue = queue
        self.job_id = job_id
