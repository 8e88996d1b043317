"""The three workloads, written once against the adapter interface."""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import time
from typing import Any

import adapters
from adapters.base import Adapter, Data, Producer
from workers import Probe, WorkerGroup

SETTLE = 0.3  # seconds to let late duplicates show before counting them


async def run_workload(args: argparse.Namespace) -> dict[str, Any]:
    adapter = adapters.load(args.lib)
    producer = await adapter.open_producer(args.url)
    try:
        if args.workload in ("enqueue", "bulk"):
            return await _enqueue(producer, args.jobs, bulk=args.workload == "bulk")
        if args.workload == "drain":
            return await _drain(adapter, producer, args)
        return await _latency(adapter, producer, args)
    finally:
        await producer.close()


def _items(count: int) -> list[Data]:
    now = time.time()
    return [{"i": i, "t": now} for i in range(count)]


async def _check_queued(producer: Producer, expected: int) -> None:
    queued = await producer.queued()
    if queued != expected:
        raise RuntimeError(f"{queued} jobs queued after enqueueing {expected}")


async def _enqueue(producer: Producer, count: int, *, bulk: bool) -> dict[str, Any]:
    """W1: jobs/s for ``count`` jobs, one call each or through the bulk API."""
    items = _items(count)
    started = time.perf_counter()
    if bulk:
        await producer.add_bulk(items)
    else:
        for item in items:
            await producer.add(item)
    elapsed = time.perf_counter() - started
    await _check_queued(producer, count)
    return {"ok": True, "value": count / elapsed, "seconds": elapsed, "jobs": count}


async def _drain(adapter: Adapter, producer: Producer, args: argparse.Namespace) -> dict[str, Any]:
    """W2: jobs/s from the first handler start to the last, over ``procs`` workers."""
    await producer.add_bulk(_items(args.jobs))
    await _check_queued(producer, args.jobs)
    probe = Probe(args.url)
    group = WorkerGroup(
        [adapter.worker_command(args.url)] * args.procs, args.url, args.logdir, args.pidfile
    )
    spawned = time.time()
    group.start(f"{adapter.name}-drain{args.procs}")
    try:
        await asyncio.to_thread(probe.wait_for, args.jobs, args.timeout, group)
        await asyncio.sleep(SETTLE)
        progress = probe.progress()
    finally:
        group.stop()
    window = progress.last - progress.first
    return {
        "ok": True, "value": args.jobs / window, "seconds": window, "jobs": args.jobs,
        "procs": args.procs, "duplicates": progress.runs - args.jobs,
        "spawn_to_last": progress.last - spawned,
        # how long after the first process the last one ran its first job
        "first_spread": progress.first_spread,
        "processes": progress.processes,  # (first, last) after the first start, and runs
    }  # fmt: skip


async def _latency(
    adapter: Adapter, producer: Producer, args: argparse.Namespace
) -> dict[str, Any]:
    """W3: enqueue-to-handler-start latency of jobs sent at ``rate`` jobs/s."""
    probe = Probe(args.url)
    group = WorkerGroup([adapter.worker_command(args.url)], args.url, args.logdir, args.pidfile)
    group.start(f"{adapter.name}-latency")
    try:
        await _warm_up(producer, probe, group, args.timeout)
        interval = 1.0 / args.rate
        start = time.monotonic()
        for i in range(args.jobs):
            await asyncio.sleep(max(0.0, start + i * interval - time.monotonic()))
            await producer.add({"i": i, "t": time.time()})
        await asyncio.to_thread(probe.wait_for, args.jobs, args.timeout, group)
        await asyncio.sleep(SETTLE)
        latencies = probe.latencies()
    finally:
        group.stop()
    if len(latencies) != args.jobs:
        raise RuntimeError(f"{len(latencies)} latencies recorded for {args.jobs} jobs")
    ms = sorted(v * 1000 for v in latencies.values())
    return {
        "ok": True, "p50": _quantile(ms, 0.50), "p99": _quantile(ms, 0.99),
        "mean": statistics.fmean(ms), "max": ms[-1], "jobs": args.jobs, "rate": args.rate,
    }  # fmt: skip


async def _warm_up(producer: Producer, probe: Probe, group: WorkerGroup, timeout: float) -> None:
    """Send warm-up jobs (negative numbers) until the worker has run one, then let it settle."""
    deadline = time.monotonic() + timeout
    n = 0
    while probe.warm() == 0:
        if group.exited():
            raise RuntimeError(f"the worker exited during warm-up (codes {group.exited()})")
        if time.monotonic() > deadline:
            raise TimeoutError("the worker ran no warm-up job")
        n += 1
        await producer.add({"i": -n, "t": time.time()})
        await asyncio.sleep(0.25)
    await asyncio.sleep(1.0)


def _quantile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank quantile."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]
