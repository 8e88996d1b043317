"""``conveyor worker --observe``: JSON logs per job and a Prometheus endpoint of its own."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import urllib.request

import conveyor
from conveyor import Queue
from conveyor.embedded import free_port
from tests.conftest import wait_for_state


async def scrape(port: int) -> str:
    def get() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            return str(reply.read().decode())

    for _ in range(100):  # the endpoint comes up with the process
        try:
            return await asyncio.to_thread(get)
        except OSError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"no metrics endpoint on port {port}")


async def test_an_observed_worker_logs_json_and_serves_its_metrics(
    redis_server: conveyor.EmbeddedRedis, conn: conveyor.Connection, queue_name: str
) -> None:
    queue = Queue(queue_name, conn)
    jobs = [await queue.add("echo", {"n": i}) for i in range(3)]
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "conveyor", "worker", "--app", "tests.isolated_handlers:HANDLERS",
        "-q", queue_name, "--url", redis_server.url, "--observe", "--metrics-port", str(port),
        "--log-format", "json", stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        for job in jobs:
            await wait_for_state(queue, job.id, "completed", timeout=30)
        metrics = await scrape(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
    line = f'conveyor_jobs_completed_total{{name="echo",queue="{queue_name}"}} 3.0'
    assert line in metrics
    records = [json.loads(text) for text in stderr.decode().splitlines() if text.startswith("{")]
    completed = [r for r in records if r.get("event") == "job.completed"]
    assert sorted(r["job_id"] for r in completed) == sorted(job.id for job in jobs)


async def test_metrics_port_without_observe_is_refused(
    redis_server: conveyor.EmbeddedRedis,
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "conveyor", "worker", "--app", "tests.isolated_handlers:HANDLERS",
        "-q", "q", "--url", redis_server.url, "--metrics-port", "9999",
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert "--metrics-port needs --observe" in stderr.decode()


async def test_the_worker_process_keeps_its_start_up_heap_out_of_the_collectors_way(
    redis_server: conveyor.EmbeddedRedis, conn: conveyor.Connection, queue_name: str
) -> None:
    queue = Queue(queue_name, conn)
    job = await queue.add("frozen_objects")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "conveyor", "worker", "--app", "tests.isolated_handlers:HANDLERS",
        "-q", queue_name, "--url", redis_server.url, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await wait_for_state(queue, job.id, "completed", timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
    frozen = (await queue.get_job(job.id)).result
    assert frozen > 10_000  # the interpreter, conveyor and the app: gc.freeze() ran
