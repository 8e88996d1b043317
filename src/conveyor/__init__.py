"""Conveyor: a job queue on Redis with the operations layer built in."""

from conveyor.config import Settings, load_settings
from conveyor.connection import Connection, SyncConnection, connect, connect_sync
from conveyor.context import JobContext, current_job
from conveyor.dedup import Dedup, DedupMode
from conveyor.embedded import EmbeddedRedis
from conveyor.errors import (
    ConfigError,
    ConveyorError,
    FlowConflict,
    IdempotencyConflict,
    InvalidFlow,
    InvalidJobData,
    InvalidJobId,
    InvalidJobOptions,
    InvalidLimits,
    InvalidQueueName,
    InvalidSchedule,
    InvalidStateTransition,
    JobCancelled,
    JobNotFound,
    JobTimeout,
    LeaseLost,
    PayloadTooLarge,
    QueueFull,
    RateLimited,
    RedisUnavailable,
    RetryLater,
    ScheduleNotFound,
    UnrecoverableError,
    ValidationError,
)
from conveyor.flows import ChildFailure, ChildResult, FlowJob, FlowNode, Flows
from conveyor.guarded import Admission
from conveyor.handlers import Handler
from conveyor.isolation import IsolatedContext, IsolatedHandlerError
from conveyor.job import Enqueued, Job, JobOptions, JobState, Retention
from conveyor.limiter import GroupLimits, Limiter, Limits, Rate
from conveyor.middleware import CallNext, Middleware
from conveyor.observability import CorrelationMiddleware, HistoryRecorder, LoggingMiddleware
from conveyor.queue import DeadFilter, Event, Queue
from conveyor.registry import WorkerInfo, live_workers, queue_names
from conveyor.retry import Backoff, ErrorRule, RetryPolicy
from conveyor.scheduler import CatchUp, Schedule, ScheduleInfo, Scheduler, Schedules
from conveyor.sync import SyncQueue
from conveyor.worker import Worker

__version__ = "0.1.0"

__all__ = [
    "Admission",
    "Backoff",
    "CallNext",
    "CatchUp",
    "ChildFailure",
    "ChildResult",
    "ConfigError",
    "Connection",
    "ConveyorError",
    "CorrelationMiddleware",
    "DeadFilter",
    "Dedup",
    "DedupMode",
    "EmbeddedRedis",
    "Enqueued",
    "ErrorRule",
    "Event",
    "FlowConflict",
    "FlowJob",
    "FlowNode",
    "Flows",
    "GroupLimits",
    "Handler",
    "HistoryRecorder",
    "IdempotencyConflict",
    "InvalidFlow",
    "InvalidJobData",
    "InvalidJobId",
    "InvalidJobOptions",
    "InvalidLimits",
    "InvalidQueueName",
    "InvalidSchedule",
    "InvalidStateTransition",
    "IsolatedContext",
    "IsolatedHandlerError",
    "Job",
    "JobCancelled",
    "JobContext",
    "JobNotFound",
    "JobOptions",
    "JobState",
    "JobTimeout",
    "LeaseLost",
    "Limiter",
    "Limits",
    "LoggingMiddleware",
    "Middleware",
    "PayloadTooLarge",
    "Queue",
    "QueueFull",
    "Rate",
    "RateLimited",
    "RedisUnavailable",
    "Retention",
    "RetryLater",
    "RetryPolicy",
    "Schedule",
    "ScheduleInfo",
    "ScheduleNotFound",
    "Scheduler",
    "Schedules",
    "Settings",
    "SyncConnection",
    "SyncQueue",
    "UnrecoverableError",
    "ValidationError",
    "Worker",
    "WorkerInfo",
    "__version__",
    "connect",
    "connect_sync",
    "current_job",
    "live_workers",
    "load_settings",
    "queue_names",
]
