"""Schemathesis fuzzes every operation of the served OpenAPI document: never a 500.

Bounded for CI (a few examples per operation, fixed seed); it runs against a private
Redis so the queues and keys it invents do not slow the other tests down.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import conveyor
from conveyor import EmbeddedRedis
from conveyor.server import KeyStore
from tests.server.conftest import LiveServer

MAX_EXAMPLES = 5
TIME_BUDGET = 45  # seconds; schemathesis stops generating when it is spent


def schemathesis_command() -> list[str]:
    found = shutil.which("st", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "schemathesis"]


@pytest.mark.timeout(300)
async def test_no_operation_answers_500(
    make_server: Any, own_server: EmbeddedRedis, settings: Any, tmp_path: Path
) -> None:
    conn = await conveyor.connect(own_server.url, settings=settings)
    try:
        _, token = await KeyStore(conn).create("fuzzer", "admin")
        await conveyor.Queue("fuzzed", conn).add("x", {"a": 1})
    finally:
        await conn.close()
    server: LiveServer = make_server(own_server.url)
    command = [
        *schemathesis_command(), "run", f"{server.url}/api/v1/openapi.json",
        "--checks", "not_a_server_error", "--max-examples", str(MAX_EXAMPLES),
        "--seed", "1", "--workers", "2", "--request-timeout", "20", "--max-time", str(TIME_BUDGET),
        "--phases", "examples,fuzzing",
        # An endless stream, tested on its own; and readiness answers 503 by design.
        "--exclude-path", "/api/v1/events", "--exclude-path", "/readyz",
        "-H", f"Authorization: Bearer {token}",
    ]  # fmt: skip
    result = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=240, cwd=tmp_path,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
