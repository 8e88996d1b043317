"""The public API: what ``import conveyor`` exports is pinned, so a change to it is a decision."""

from __future__ import annotations

import conveyor

PINNED = {
    "Admission", "Backoff", "CallNext", "CatchUp", "ChildFailure", "ChildResult",
    "ConfigError", "Connection", "ConveyorError", "CorrelationMiddleware", "DeadFilter",
    "Dedup", "DedupMode", "EmbeddedRedis", "Enqueued", "ErrorRule", "Event", "FlowConflict",
    "FlowJob", "FlowNode", "Flows", "GroupLimits", "Handler", "HistoryRecorder",
    "IdempotencyConflict", "InvalidFlow", "InvalidJobData", "InvalidJobId",
    "InvalidJobOptions", "InvalidLimits", "InvalidQueueName", "InvalidSchedule",
    "InvalidStateTransition", "IsolatedContext", "IsolatedHandlerError", "Job",
    "JobCancelled", "JobContext", "JobNotFound", "JobOptions", "JobState", "JobTimeout",
    "LeaseLost", "Limiter", "Limits", "LoggingMiddleware", "Middleware", "PayloadTooLarge",
    "Queue", "QueueFull", "Rate", "RateLimited", "RedisUnavailable", "Retention",
    "RetryLater", "RetryPolicy", "Schedule", "ScheduleInfo", "ScheduleNotFound", "Scheduler",
    "Schedules", "Settings", "SyncConnection", "SyncQueue", "UnrecoverableError",
    "ValidationError", "Worker", "WorkerInfo", "__version__", "connect", "connect_sync",
    "current_job", "live_workers", "load_settings", "queue_names",
}  # fmt: skip


def test_exports_are_pinned_and_all_importable() -> None:
    assert set(conveyor.__all__) == PINNED
    assert len(conveyor.__all__) == len(PINNED)  # no name listed twice
    for name in conveyor.__all__:
        assert getattr(conveyor, name) is not None, name


def test_current_job_is_none_outside_a_job() -> None:
    assert conveyor.current_job() is None
