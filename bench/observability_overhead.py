"""Observability overhead: drain noop jobs with metrics, history, logs and tracing off vs on.

    .venv/bin/python bench/observability_overhead.py [--jobs 20000] [--runs 3] [--sdk]

Each run starts a fresh embedded redis-server, enqueues the jobs, then times one worker
process (one asyncio loop, concurrency 200) draining them. "on" is
``conveyor.observability.standard_middleware``: correlation ids, OpenTelemetry spans, JSON
logs at INFO (two lines per job, written to a file), Prometheus metrics and the metric
history flushed every second. Without ``--sdk`` the tracer is the API's no-op one (what a
process that installed no SDK pays); with ``--sdk`` an SDK tracer provider records every
span and hands it to a batch processor with an exporter that drops it. The order of the
modes alternates between runs; prints the median drain rate of each mode.
"""

from __future__ import annotations

import argparse
import asyncio
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
from conveyor.observability.logging import configure


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


def install_sdk() -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    trace.set_tracer_provider(provider)


async def drain_once(jobs: int, on: bool) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(tmp, appendonly=False) as server:
        conn = await conveyor.connect(server.url, settings=Settings())
        try:
            stack: list[Middleware] = standard_middleware(conn) if on else []
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
    args = parser.parse_args(argv)
    if args.sdk:
        install_sdk()
    rates: dict[str, list[float]] = {"off": [], "on": []}
    cpus: dict[str, list[float]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory() as logs:
        log_file = (Path(logs) / "worker.log").open("w")
        handler = configure("INFO", format="json", stream=log_file)
        logging.getLogger("conveyor").setLevel(logging.WARNING)  # off: nothing at INFO
        for run in range(args.runs):
            for mode in ("off", "on") if run % 2 == 0 else ("on", "off"):
                level = logging.INFO if mode == "on" else logging.WARNING
                logging.getLogger("conveyor").setLevel(level)
                rate, cpu = await drain_once(args.jobs, mode == "on")
                rates[mode].append(rate)
                cpus[mode].append(cpu)
                print(f"run {run + 1} {mode:>3}: {rate:,.0f} jobs/s, {cpu:.0f} us CPU/job")
        logging.getLogger("conveyor").removeHandler(handler)
        log_file.close()
        lines = sum(1 for _ in (Path(logs) / "worker.log").open())
    off, on = statistics.median(rates["off"]), statistics.median(rates["on"])
    print(f"median off: {off:,.0f} jobs/s; on: {on:,.0f} jobs/s; on/off = {on / off:.1%}")
    cpu_off, cpu_on = statistics.median(cpus["off"]), statistics.median(cpus["on"])
    print(f"worker CPU per job (median): off {cpu_off:.0f} us, on {cpu_on:.0f} us")
    print(f"log lines written while on: {lines:,}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
