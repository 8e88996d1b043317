"""``conveyor server`` starts uvicorn serving the API; SIGTERM stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from conveyor import EmbeddedRedis
from conveyor.embedded import free_port


def test_server_command_serves_until_sigterm(redis_server: EmbeddedRedis, tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "conveyor", "server", "--port", str(port), "--workers", "2",
               "--url", redis_server.url]  # fmt: skip
    env = {**os.environ, "CONVEYOR_DATA_DIR": str(tmp_path)}
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.05)
        assert r.json()["checks"]["redis"] == "ok"
        r = httpx.get(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=5)
        assert r.json()["info"]["title"] == "Conveyor operations API"
    finally:
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught
        assert process.wait(20) in (0, -signal.SIGTERM)
        if process.stderr:
            process.stderr.close()
