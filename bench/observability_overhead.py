"""Observability overhead: drain noop jobs with metrics, history, logs and tracing off vs on.

    .venv/bin/python bench/observability_overhead.py [--jobs 20000] [--runs 9] [--quiet]
        [--sdk [--sample RATIO]]

Each run starts a fresh embedded redis-server, enqueues the jobs, then times one worker
process (one asyncio loop, concurrency 200) draining them. "on" is
``conveyor.observability.standard_middleware``: correlation ids, OpenTelemetry spans,
JSON logs at INFO (a ``job.completed`` line per job, written to a file), Prometheus
metrics and the metric history flushed every second. Without ``--sdk`` the tracer is the
API's no-op one (what a process that installed no SDK pays); with ``--sdk`` an SDK tracer
provider records every span (or, with ``--sample 0.01``, one trace in a hundred:
``ParentBased(TraceIdRatioBased)``) and hands it to a batch processor with an exporter
that drops it. The order of the modes alternates between runs; prints the median drain
rate of each mode, the median of each run's own on/off ratio ("paired") and the worker
process's CPU time per job. ``--quiet`` adds a mode with ``job.completed`` at DEBUG.
As ``conveyor worker`` does once started, the start-up heap is frozen (``gc.freeze()``)
before the first run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import conveyor
from conveyor import EmbeddedRedis, Middleware, Queue, Worker
from conveyor.config import Settings
from conveyor.observability import standard_middleware
from conveyor.observability.logging import LoggingMiddleware, configure


def noop_until(jobs: int) -> tuple[Any, asyncio.Event]:
    """A handler that does nothing, and an event set when the last of ``jobs`` has run."""
    done = asyncio.Event()
    left = jobs

    async def noop(ctx: conveyor.JobContext, data: Any) -> None:
        nonlocal left
        left -= 1
        if left == 0:
            done.set()

    return noop, done


def install_sdk(ratio: float) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    class Drop(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(ratio)))
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    trace.set_tracer_provider(provider)


def stack_for(mode: str, conn: conveyor.Connection) -> list[Middleware]:
    if mode == "off":
        return []
    stack = standard_middleware(conn)
    if mode == "quiet":  # job.completed at DEBUG: INFO logs only enqueues and failures
        stack = [
            LoggingMiddleware(completed_level="DEBUG") if isinstance(m, LoggingMiddleware) else m
            for m in stack
        ]
    return stack


async def drain_once(jobs: int, mode: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(tmp, appendonly=False) as server:
        conn = await conveyor.connect(server.url, settings=Settings())
        try:
            stack = stack_for(mode, conn)
            queue = Queue("bench", conn, middleware=stack)
            await queue.add_bulk([("noop", None)] * jobs)
            noop, done = noop_until(jobs)
            worker = Worker(
                conn, ["bench"], {"noop": noop}, concurrency=200, idle_block=0.05,
                middleware=stack,
            )  # fmt: skip
            task = asyncio.create_task(worker.run())
            start, cpu = time.perf_counter(), time.process_time()
            await done.wait()
            worker.stop()
            await task  # the last acknowledgements are part of the drain
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
            assert worker.stats.completed == jobs
            return jobs / elapsed, cpu / jobs * 1e6
        finally:
            await conn.close()


async def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sdk", action="store_true", help="record spans with the OTel SDK")
    parser.add_argument(
        "--sample", type=float, default=1.0, help="with --sdk: the share of traces sampled"
    )
    parser.add_argument("--quiet", action="store_true", help="also run with job.completed at DEBUG")
    args = parser.parse_args(argv)
    if args.sdk:
        install_sdk(args.sample)
    gc.freeze()
    modes = ("off", "on", "quiet") if args.quiet else ("off", "on")
    rates: dict[str, list[float]] = {mode: [] for mode in modes}
    cpus: dict[str, list[float]] = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory() as logs:
        log_file = (Path(logs) / "worker.log").open("w")
        handler = configure("INFO", format="json", stream=log_file)
        logging.getLogger("conveyor").setLevel(logging.WARNING)  # off: nothing at INFO
        for run in range(args.runs):
            for mode in modes if run % 2 == 0 else modes[::-1]:
                level = logging.WARNING if mode == "off" else logging.INFO
                logging.getLogger("conveyor").setLevel(level)
                rate, cpu = await drain_once(args.jobs, mode)
                rates[mode].append(rate)
                cpus[mode].append(cpu)
                print(f"run {run + 1} {mode:>5}: {rate:,.0f} jobs/s, {cpu:.0f} us CPU/job")
        logging.getLogger("conveyor").removeHandler(handler)
        handler.close()
        log_file.close()
        lines = sum(1 for _ in (Path(logs) / "worker.log").open())
    off = statistics.median(rates["off"])
    for mode in modes:
        rate, cpu = statistics.median(rates[mode]), statistics.median(cpus[mode])
        # This VM's speed drifts between runs; modes measured back to back drift least, so
        # the median of each run's own ratio is the steadier figure.
        paired = statistics.median(r / o for r, o in zip(rates[mode], rates["off"], strict=True))
        print(
            f"median {mode:>5}: {rate:,.0f} jobs/s ({rate / off:.1%} of off; "
            f"paired {paired:.1%}), {cpu:.0f} us CPU/job"
        )
    print(f"log lines written: {lines:,}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
