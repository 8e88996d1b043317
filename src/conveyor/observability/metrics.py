"""Worker- and producer-side Prometheus metrics, as a :class:`conveyor.Middleware`.

Needs ``prometheus-client`` (``pip install conveyor[metrics]``). Labels are the queue and the
job name only, so cardinality stays bounded. When ``PROMETHEUS_MULTIPROC_DIR`` is set before
this module is imported, prometheus-client keeps values in per-process files and
:func:`render` merges every process (gunicorn-style multi-process workers).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from conveyor.context import JobContext
from conveyor.errors import RetryLater
from conveyor.job import JobOptions
from conveyor.middleware import Middleware

try:
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        REGISTRY,
        CollectorRegistry,
        Counter,
        Gauge,
        Histogram,
        generate_latest,
        multiprocess,
    )
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "conveyor.observability.metrics needs prometheus-client: pip install 'conveyor[metrics]'"
    ) from exc

#: Seconds; from a few ms (no-op handlers) to an hour (long batch jobs).
DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    600.0, 1800.0, 3600.0,
)  # fmt: skip

#: Counter families by (queue, job name): metric suffix -> help text.
JOB_COUNTERS = {
    "enqueued": "Jobs handed to Queue.add / add_bulk by this process",
    "attempts": "Attempts that reached an outcome",
    "completed": "Attempts that completed",
    "failed": "Attempts that raised (rate-limited ones excluded)",
    "retried": "Failed attempts scheduled to run again",
    "dead": "Jobs sent to the dead-letter set",
    "cancelled": "Jobs cancelled while running",
    "rate_limited": "Attempts that raised RetryLater (retried without using an attempt)",
}

#: Counter families by queue only.
QUEUE_COUNTERS = {
    "stalled": "Jobs whose lease expired, found by this process's stall check",
    "lease_lost": "Results or failures rejected because another attempt owns the job",
    "fetched": "Jobs leased by this process",
}

HISTOGRAM_NAMES = ("conveyor_job_duration_seconds", "conveyor_job_wait_seconds")

#: Every metric family this module exports (names as Prometheus shows them).
METRIC_NAMES = (
    *(f"conveyor_jobs_{n}_total" for n in JOB_COUNTERS),
    "conveyor_jobs_stalled_total",
    "conveyor_lease_lost_total",
    "conveyor_jobs_fetched_total",
    *HISTOGRAM_NAMES,
    "conveyor_worker_last_fetch_timestamp_seconds",
)


class WorkerMetrics:
    """The metric families, registered once per registry."""

    def __init__(self, registry: CollectorRegistry | None = REGISTRY) -> None:
        labels = ("queue", "name")
        self.jobs = {
            kind: Counter(f"conveyor_jobs_{kind}", text, labels, registry=registry)
            for kind, text in JOB_COUNTERS.items()
        }
        self.stalled = Counter(
            "conveyor_jobs_stalled", QUEUE_COUNTERS["stalled"], ["queue"], registry=registry
        )
        self.lease_lost = Counter(
            "conveyor_lease_lost", QUEUE_COUNTERS["lease_lost"], ["queue"], registry=registry
        )
        self.fetched = Counter(
            "conveyor_jobs_fetched", QUEUE_COUNTERS["fetched"], ["queue"], registry=registry
        )
        self.duration = Histogram(
            "conveyor_job_duration_seconds", "Processing time of one attempt",
            labels, buckets=DURATION_BUCKETS, registry=registry,
        )  # fmt: skip
        self.wait = Histogram(
            "conveyor_job_wait_seconds", "Time from due (enqueue plus delay) to first start",
            labels, buckets=DURATION_BUCKETS, registry=registry,
        )  # fmt: skip
        self.last_fetch = Gauge(
            "conveyor_worker_last_fetch_timestamp_seconds",
            "UNIX time of this process's last successful fetch", ["queue"],
            registry=registry, multiprocess_mode="max",
        )  # fmt: skip


_default: WorkerMetrics | None = None


def default_metrics() -> WorkerMetrics:
    """The families on prometheus-client's global registry (created on first use)."""
    global _default
    if _default is None:
        _default = WorkerMetrics()
    return _default


class _Labelled:
    """Label children cached per (queue, name): ``labels()`` is the costly part of a hook."""

    __slots__ = (
        "attempts", "cancelled", "completed", "dead", "duration", "failed", "rate_limited",
        "retried", "wait",
    )  # fmt: skip

    def __init__(self, m: WorkerMetrics, queue: str, name: str) -> None:
        self.attempts = m.jobs["attempts"].labels(queue, name)
        self.completed = m.jobs["completed"].labels(queue, name)
        self.failed = m.jobs["failed"].labels(queue, name)
        self.retried = m.jobs["retried"].labels(queue, name)
        self.dead = m.jobs["dead"].labels(queue, name)
        self.cancelled = m.jobs["cancelled"].labels(queue, name)
        self.rate_limited = m.jobs["rate_limited"].labels(queue, name)
        self.duration = m.duration.labels(queue, name)
        self.wait = m.wait.labels(queue, name)


class PrometheusMiddleware(Middleware):
    """Counts every attempt and outcome; give it to the worker and to producers' queues."""

    def __init__(self, metrics: WorkerMetrics | None = None) -> None:
        self.metrics = metrics or default_metrics()
        self._children: dict[tuple[str, str], _Labelled] = {}

    def _of(self, queue: str, name: str) -> _Labelled:
        child = self._children.get((queue, name))
        if child is None:
            child = self._children[(queue, name)] = _Labelled(self.metrics, queue, name)
        return child

    def before_enqueue(self, queue: str, name: str, options: JobOptions) -> JobOptions:
        self.metrics.jobs["enqueued"].labels(queue, name).inc()
        return options

    # No around_job: one hook call per attempt, at its end (jobs in flight are the cluster
    # view's conveyor_queue_jobs{state="active"}).
    def job_finished(
        self, ctx: JobContext, outcome: str, duration: float, error: BaseException | None
    ) -> None:
        child = self._of(ctx.queue, ctx.name)
        child.attempts.inc()
        child.duration.observe(duration)
        if ctx.token == "1" and ctx.ready_at:
            # Only the first activation waited for a worker; later ones waited for a backoff.
            child.wait.observe(max(time.time() - duration - ctx.ready_at, 0.0))
        if outcome == "completed":
            child.completed.inc()
        elif outcome == "cancelled":
            child.cancelled.inc()
        elif isinstance(error, RetryLater):
            child.rate_limited.inc()
        else:
            child.failed.inc()
            (child.retried if outcome == "retry" else child.dead).inc()

    def jobs_fetched(self, queue: str, count: int) -> None:
        self.metrics.last_fetch.labels(queue).set(time.time())
        if count:
            self.metrics.fetched.labels(queue).inc(count)

    def lease_lost(self, queue: str, job_id: str) -> None:
        self.metrics.lease_lost.labels(queue).inc()

    def stalled(self, queue: str, requeued: int, dead: int) -> None:
        self.metrics.stalled.labels(queue).inc(requeued + dead)

    async def worker_stopped(self, worker_id: str, queues: Sequence[str]) -> None:
        if multiprocess_dir():
            # Drops this process's live gauges; its counters stay in the merged view.
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render(registry: CollectorRegistry | None = None) -> tuple[bytes, str]:
    """The exposition text and its content type: every process's metrics in multi-process
    mode, else ``registry`` (the global one by default)."""
    if registry is None and multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry or REGISTRY), CONTENT_TYPE_LATEST


def serve(port: int, addr: str = "0.0.0.0") -> None:
    """Expose :func:`render` on ``http://addr:port/metrics`` from a background thread."""
    from prometheus_client import start_http_server

    registry: CollectorRegistry = REGISTRY
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    start_http_server(port, addr, registry=registry)
