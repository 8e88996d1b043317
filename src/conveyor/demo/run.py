"""Run the demo: embedded server (if no URL), worker, producer, live terminal view."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from collections.abc import Callable
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.table import Table

from conveyor.connection import Connection, connect
from conveyor.demo.handlers import HANDLERS
from conveyor.job import JobOptions, JobState
from conveyor.queue import Event, Queue
from conveyor.retry import Backoff
from conveyor.worker import Worker

QUEUE = "demo"
RECENT = 12


async def produce(queue: Queue, rate: float, stop: asyncio.Event) -> None:
    kinds: list[tuple[str, Callable[[int], dict[str, Any]], JobOptions]] = [
        ("echo", lambda i: {"message": f"hello {i}"}, JobOptions()),
        ("sleep", lambda i: {"seconds": random.uniform(0.5, 3)}, JobOptions(timeout=10)),
        ("flaky", lambda i: {"failure_rate": 0.5},
         JobOptions(attempts=4, backoff=Backoff.exponential(0.5, jitter=0.3))),
        ("fail", lambda i: {"reason": "demo"}, JobOptions()),
    ]  # fmt: skip
    weights = [50, 20, 25, 5]
    i = 0
    while not stop.is_set():
        name, data, options = random.choices(kinds, weights)[0]
        priority = random.choice([0, 0, 0, 10])
        delay = random.choice([0.0] * 9 + [2.0])
        await queue.add(name, data(i), JobOptions(priority=priority, delay=delay).merged(options))
        i += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1 / rate)


def render(counts: dict[str, int], events: list[Event], started: float) -> Group:
    table = Table(title=f"queue '{QUEUE}'  ({time.monotonic() - started:.0f}s)")
    for state in JobState:
        table.add_column(state.value, justify="right")
    table.add_row(*(str(counts.get(s.value, 0)) for s in JobState))
    recent = Table(title="latest events", show_header=True)
    recent.add_column("job")
    recent.add_column("event")
    recent.add_column("detail")
    for event in events[-RECENT:]:
        detail = " ".join(f"{k}={v}" for k, v in event.fields.items() if k not in ("job", "event"))
        recent.add_row(event.job_id[:12], event.event, detail[:60])
    return Group(table, recent)


async def watch(queue: Queue, stop: asyncio.Event, live: Live | None) -> None:
    events: list[Event] = []
    started = time.monotonic()
    stream = queue.events(after="$", block_ms=250)
    last_draw = 0.0
    while not stop.is_set():
        try:
            event = await asyncio.wait_for(anext(stream), 0.5)
            events.append(event)
            del events[:-RECENT]
            if live is None:
                print(f"{event.event:>16}  {event.job_id[:12]}", flush=True)
        except TimeoutError:
            pass
        if live is not None and time.monotonic() - last_draw > 0.2:
            live.update(render(await queue.counts(), events, started))
            last_draw = time.monotonic()


async def run_demo(
    url: str | None, duration: float | None, rate: float, plain: bool
) -> dict[str, int]:
    connection: Connection = await connect(url)
    if connection.server is not None:
        server = connection.server
        print(f"started an embedded Redis at {server.url} (data in {server.data_dir})")
    queue = Queue(QUEUE, connection)
    worker = Worker(connection, [QUEUE], HANDLERS, concurrency=20, shutdown_grace=5)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if duration is not None:
        loop.call_later(duration, stop.set)
    worker_task = asyncio.create_task(worker.run())
    producer = asyncio.create_task(produce(queue, rate, stop))
    api = await start_api(connection)
    try:
        if plain:
            await watch(queue, stop, None)
        else:
            with Live(render({}, [], time.monotonic()), refresh_per_second=5) as live:
                await watch(queue, stop, live)
    finally:
        await producer
        worker.stop()
        await worker_task
        if api is not None:
            await api.stop()
        counts = await queue.counts()
        print(f"demo stopped: {counts}; worker stats: {worker.stats}")
        await connection.close()
    return counts


async def start_api(connection: Connection) -> Any:
    """The operations API beside the demo, if the server extra is installed."""
    try:
        from conveyor.server import load_server_settings
        from conveyor.server.embedded import serve_in_loop
    except ImportError:
        print("operations API not started: pip install 'conveyor[server]'")
        return None
    api = await serve_in_loop(connection, load_server_settings())
    print(f"operations API at {api.url}  (admin key, shown once: {api.token})")
    print(f"  try: curl -H 'Authorization: Bearer {api.token}' {api.url}/queues")
    return api


def main(url: str | None, duration: float | None, rate: float, plain: bool) -> dict[str, int]:
    return asyncio.run(run_demo(url, duration, rate, plain))
