"""Worker-side Prometheus metrics: exact counts after a known workload."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import conveyor
from conveyor.observability.metrics import (
    METRIC_NAMES,
    PrometheusMiddleware,
    WorkerMetrics,
    tally_collector,
)
from tests.observability.conftest import run_workload


def samples(registry: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.mark.parametrize("kind", ["tallies", "client"])
async def test_scrape_after_known_workload(
    conn: conveyor.Connection, queue_name: str, kind: str
) -> None:
    registry = CollectorRegistry()
    if kind == "tallies":  # the default: counts read at scrape time
        middleware = PrometheusMiddleware(registry=registry)
    else:  # prometheus-client objects, as in multi-process mode
        middleware = PrometheusMiddleware(WorkerMetrics(registry))
    outcome = await run_workload(conn, queue_name, [middleware])
    got = samples(registry)

    def value(metric: str, name: str | None = None, **labels: str) -> float:
        labels = {"queue": queue_name, **({"name": name} if name else {}), **labels}
        return got.get((metric, frozenset(labels.items())), 0.0)

    assert value("conveyor_jobs_enqueued_total", "ok") == 5
    assert value("conveyor_jobs_enqueued_total", "bad") == 2
    assert value("conveyor_jobs_attempts_total", "ok") == 5
    assert value("conveyor_jobs_attempts_total", "bad") == 4
    assert value("conveyor_jobs_attempts_total", "limited") == 2
    assert value("conveyor_jobs_completed_total", "ok") == 5
    assert value("conveyor_jobs_completed_total", "limited") == 1
    assert value("conveyor_jobs_failed_total", "bad") == outcome.failed
    assert value("conveyor_jobs_retried_total", "bad") == outcome.retried
    assert value("conveyor_jobs_dead_total", "bad") == outcome.dead
    assert value("conveyor_jobs_rate_limited_total", "limited") == outcome.rate_limited
    assert value("conveyor_jobs_failed_total", "limited") == 0
    # One duration per attempt; one wait per job (its first activation only).
    assert value("conveyor_job_duration_seconds_count", "ok") == 5
    assert value("conveyor_job_duration_seconds_count", "bad") == 4
    assert value("conveyor_job_duration_seconds_count", "limited") == 2
    assert value("conveyor_job_duration_seconds_bucket", "ok", le="+Inf") == 5
    assert value("conveyor_job_duration_seconds_bucket", "ok", le="10.0") == 5  # no-op handlers
    assert value("conveyor_job_wait_seconds_count", "bad") == 2
    assert value("conveyor_job_wait_seconds_count", "ok") == 5
    assert value("conveyor_jobs_fetched_total") == outcome.attempts
    assert value("conveyor_worker_last_fetch_timestamp_seconds") > 0


def test_every_declared_name_is_exported_by_both_kinds() -> None:
    # Counters are collected under their base name; their samples carry _total.
    declared = {n.removesuffix("_total") for n in METRIC_NAMES}
    client, tallies = CollectorRegistry(), CollectorRegistry()
    WorkerMetrics(client)
    tally_collector(tallies)
    assert {f.name for f in client.collect()} == declared
    assert {f.name for f in tallies.collect()} == declared
    assert tally_collector(tallies) is tally_collector(tallies)  # registered once


SCRIPT = """
import asyncio, os, sys
from conveyor.observability.metrics import PrometheusMiddleware
from conveyor.context import JobContext
m = PrometheusMiddleware()  # multi-process mode picks the client objects
ctx = JobContext(id="j", name="n", queue="q", attempt=1, token="1", meta={}, options={},
                 worker_id="w", _write=None)
for _ in range(int(sys.argv[1])):
    m.job_finished(ctx, "completed", 0.01, None)
"""


def test_multiprocess_mode_merges_processes(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for count in (3, 4):
        subprocess.run([sys.executable, "-c", SCRIPT, str(count)], env=env, check=True)
    code = (
        "from conveyor.observability.metrics import render; "
        "import sys; sys.stdout.write(render()[0].decode())"
    )
    text = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    ).stdout
    completed = [
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "conveyor_jobs_completed_total"
    ]
    assert completed == [7.0]
