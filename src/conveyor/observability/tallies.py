"""Prometheus metrics kept as plain counts and read at scrape time (single-process mode).

prometheus-client's metric objects take a lock and walk their buckets on every update; a
busy worker updates four of them per job. Here a job adds to a few list slots, and a
:class:`Collector` turns the counts into the same families when Prometheus scrapes. Updates
happen on the event loop's thread and scrapes on the HTTP thread: the GIL keeps each list
slot consistent, and a scrape racing a job may see its count a moment before its bucket.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping, Sequence
from itertools import accumulate

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from conveyor.context import JobContext


class _Series:
    """Counts of one (queue, job name): counters by kind, then two histograms."""

    __slots__ = ("counts", "duration", "duration_sum", "wait", "wait_sum")

    def __init__(self, kinds: int, buckets: int) -> None:
        self.counts = [0] * kinds
        self.duration = [0] * (buckets + 1)
        self.duration_sum = 0.0
        self.wait = [0] * (buckets + 1)
        self.wait_sum = 0.0


class TallyCollector(Collector):
    """The worker-side families of :mod:`conveyor.observability.metrics`, from plain counts."""

    def __init__(
        self,
        job_counters: Mapping[str, str],
        queue_counters: Mapping[str, tuple[str, str]],
        histograms: Mapping[str, str],
        buckets: Sequence[float],
    ) -> None:
        self.kinds = {kind: i for i, kind in enumerate(job_counters)}
        self.job_help = dict(job_counters)
        self.queue_counters = dict(queue_counters)  # kind -> (family name, help)
        self.histograms = dict(histograms)  # "duration" / "wait" -> family name
        self.buckets = tuple(buckets)
        self.series: dict[tuple[str, str], _Series] = {}
        self.per_queue: dict[str, dict[str, int]] = {kind: {} for kind in queue_counters}
        self.last_fetch: dict[str, float] = {}

    def of(self, queue: str, name: str) -> _Series:
        series = self.series.get((queue, name))
        if series is None:
            series = self.series[(queue, name)] = _Series(len(self.kinds), len(self.buckets))
        return series

    def observe(self, series: _Series, duration: float, wait: float | None) -> None:
        series.duration[bisect.bisect_left(self.buckets, duration)] += 1
        series.duration_sum += duration
        if wait is not None:
            series.wait[bisect.bisect_left(self.buckets, wait)] += 1
            series.wait_sum += wait

    def add_completed(
        self, batch: Sequence[tuple[JobContext, float]], kinds: Sequence[int]
    ) -> None:
        """Count completed attempts (each adds one to every counter in ``kinds``) and observe
        their durations, and their waits when they were first activations."""
        queue = name = ""
        series: _Series | None = None  # queue names are never empty: set by the first job
        for ctx, duration in batch:
            if ctx.queue != queue or ctx.name != name:
                queue, name = ctx.queue, ctx.name
                series = self.of(queue, name)
            assert series is not None
            for kind in kinds:
                series.counts[kind] += 1
            self.observe(series, duration, ctx.first_wait)

    def add_queue(self, kind: str, queue: str, amount: int) -> None:
        counts = self.per_queue[kind]
        counts[queue] = counts.get(queue, 0) + amount

    # -- scrape ------------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        series = list(self.series.items())
        for kind, index in self.kinds.items():
            family = CounterMetricFamily(
                f"conveyor_jobs_{kind}", self.job_help[kind], labels=("queue", "name")
            )
            for (queue, name), s in series:
                family.add_metric((queue, name), s.counts[index])
            yield family
        yield from self._histograms(series)
        for kind, (family_name, text) in self.queue_counters.items():
            family = CounterMetricFamily(family_name, text, labels=("queue",))
            for queue, count in list(self.per_queue[kind].items()):
                family.add_metric((queue,), count)
            yield family
        gauge = GaugeMetricFamily(
            "conveyor_worker_last_fetch_timestamp_seconds",
            "UNIX time of this process's last successful fetch",
            labels=("queue",),
        )
        for queue, when in list(self.last_fetch.items()):
            gauge.add_metric((queue,), when)
        yield gauge

    def _histograms(self, series: list[tuple[tuple[str, str], _Series]]) -> Iterator[Metric]:
        bounds = [repr(float(b)) for b in self.buckets] + ["+Inf"]
        for attribute, family_name in self.histograms.items():
            family = HistogramMetricFamily(
                family_name, HISTOGRAM_HELP[attribute], labels=("queue", "name")
            )
            for labels, s in series:
                counts = list(accumulate(getattr(s, attribute)))
                total = getattr(s, f"{attribute}_sum")
                family.add_metric(labels, list(zip(bounds, counts, strict=True)), total)
            yield family


HISTOGRAM_HELP = {
    "duration": "Processing time of one attempt",
    "wait": "Time from due (enqueue plus delay) to first start",
}
