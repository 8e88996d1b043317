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

from conveyor.observability.tallies import TallyCollector  # needs prometheus-client too

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


#: The counters one attempt adds to, by outcome (every attempt also adds to ``attempts``).
OUTCOME_KINDS = {
    "completed": ("completed",),
    "cancelled": ("cancelled",),
    "retry": ("failed", "retried"),
    "dead": ("failed", "dead"),
    "rate_limited": ("rate_limited",),
}


class _Labelled:
    """Label children cached per (queue, name): ``labels()`` is the costly part of a hook."""

    __slots__ = ("counters", "duration", "wait")

    def __init__(self, m: WorkerMetrics, queue: str, name: str) -> None:
        self.counters = {kind: m.jobs[kind].labels(queue, name) for kind in JOB_COUNTERS}
        self.duration = m.duration.labels(queue, name)
        self.wait = m.wait.labels(queue, name)


class _ClientSink:
    """Updates prometheus-client metric objects (needed in multi-process mode)."""

    def __init__(self, metrics: WorkerMetrics) -> None:
        self.metrics = metrics
        self._children: dict[tuple[str, str], _Labelled] = {}

    def finished(
        self, queue: str, name: str, outcome: str, duration: float, wait: float | None
    ) -> None:
        child = self._children.get((queue, name))
        if child is None:
            child = self._children[(queue, name)] = _Labelled(self.metrics, queue, name)
        child.counters["attempts"].inc()
        for kind in OUTCOME_KINDS[outcome]:
            child.counters[kind].inc()
        child.duration.observe(duration)
        if wait is not None:
            child.wait.observe(wait)

    def enqueued(self, queue: str, name: str) -> None:
        self.metrics.jobs["enqueued"].labels(queue, name).inc()

    def queue_event(self, kind: str, queue: str, amount: int) -> None:
        getattr(self.metrics, kind).labels(queue).inc(amount)

    def fetched_at(self, queue: str, when: float) -> None:
        self.metrics.last_fetch.labels(queue).set(when)


class _TallySink:
    """Adds to plain counts that a :class:`TallyCollector` exposes at scrape time."""

    def __init__(self, collector: TallyCollector) -> None:
        self.collector = collector
        kinds = collector.kinds
        self._attempts, self._enqueued = kinds["attempts"], kinds["enqueued"]
        self._indexes = {k: tuple(kinds[n] for n in v) for k, v in OUTCOME_KINDS.items()}

    def finished(
        self, queue: str, name: str, outcome: str, duration: float, wait: float | None
    ) -> None:
        series = self.collector.of(queue, name)
        counts = series.counts
        counts[self._attempts] += 1
        for index in self._indexes[outcome]:
            counts[index] += 1
        self.collector.observe(series, duration, wait)

    def completed(self, batch: Sequence[tuple[JobContext, float]]) -> None:
        """:meth:`finished` for a batch of completions."""
        self.collector.add_completed(batch, (self._attempts, *self._indexes["completed"]))

    def enqueued(self, queue: str, name: str) -> None:
        self.collector.of(queue, name).counts[self._enqueued] += 1

    def queue_event(self, kind: str, queue: str, amount: int) -> None:
        self.collector.add_queue(kind, queue, amount)

    def fetched_at(self, queue: str, when: float) -> None:
        self.collector.last_fetch[queue] = when


_collectors: dict[int, TallyCollector] = {}  # one per registry: names register once


def tally_collector(registry: CollectorRegistry = REGISTRY) -> TallyCollector:
    """The scrape-time collector on ``registry``, registered on first use."""
    collector = _collectors.get(id(registry))
    if collector is None:
        queue_counters = {
            "stalled": ("conveyor_jobs_stalled", QUEUE_COUNTERS["stalled"]),
            "lease_lost": ("conveyor_lease_lost", QUEUE_COUNTERS["lease_lost"]),
            "fetched": ("conveyor_jobs_fetched", QUEUE_COUNTERS["fetched"]),
        }
        histograms = dict(zip(("duration", "wait"), HISTOGRAM_NAMES, strict=True))
        collector = TallyCollector(JOB_COUNTERS, queue_counters, histograms, DURATION_BUCKETS)
        registry.register(collector)
        _collectors[id(registry)] = collector
    return collector


class PrometheusMiddleware(Middleware):
    """Counts every attempt and outcome; give it to the worker and to producers' queues.

    By default the counts are plain numbers read at scrape time from ``registry`` (the global
    one). With ``metrics`` (or in multi-process mode) they update prometheus-client metric
    objects instead, which multi-process mode needs and which cost more per job.
    """

    def __init__(
        self, metrics: WorkerMetrics | None = None, *, registry: CollectorRegistry | None = None
    ) -> None:
        self.sink: _ClientSink | _TallySink
        if metrics is not None or multiprocess_dir():
            self.sink = _ClientSink(metrics or default_metrics())
        else:
            self.sink = _TallySink(tally_collector(registry or REGISTRY))

    def before_enqueue(self, queue: str, name: str, options: JobOptions) -> JobOptions:
        self.sink.enqueued(queue, name)
        return options

    # No around_job: one hook call per attempt, at its end (jobs in flight are the cluster
    # view's conveyor_queue_jobs{state="active"}).
    def job_finished(
        self, ctx: JobContext, outcome: str, duration: float, error: BaseException | None
    ) -> None:
        if isinstance(error, RetryLater):
            outcome = "rate_limited"
        self.sink.finished(ctx.queue, ctx.name, outcome, duration, ctx.first_wait)

    def jobs_completed(self, completed: Sequence[tuple[JobContext, float]]) -> None:
        if isinstance(self.sink, _TallySink):
            self.sink.completed(completed)
        else:
            super().jobs_completed(completed)

    def jobs_fetched(self, queue: str, count: int) -> None:
        self.sink.fetched_at(queue, time.time())
        if count:
            self.sink.queue_event("fetched", queue, count)

    def lease_lost(self, queue: str, job_id: str) -> None:
        self.sink.queue_event("lease_lost", queue, 1)

    def stalled(self, queue: str, requeued: int, dead: int) -> None:
        self.sink.queue_event("stalled", queue, requeued + dead)

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
