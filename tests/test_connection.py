"""The three URL schemes against real servers: redis://, rediss:// (TLS) and unix://."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import conveyor
from conveyor import EmbeddedRedis, Queue
from conveyor.config import Settings
from tests.conftest import running, wait_for_state


async def roundtrip(url: str, settings: Settings) -> Any:
    """Enqueue a job, run it through a worker, and return its result."""

    async def double(ctx: conveyor.JobContext, data: int) -> int:
        return data * 2

    conn = await conveyor.connect(url, settings=settings)
    try:
        queue = Queue("through", conn)
        job = await queue.add("double", 21)
        async with running(conveyor.Worker(conn, ["through"], {"double": double})):
            done = await wait_for_state(queue, job.id, "completed")
        return done.result
    finally:
        await conn.close()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(tmp_path / "tls-redis", appendonly=False, tls=True) as server:
        yield server


async def test_unix_socket_url(tmp_path: Path, settings: Settings) -> None:
    with EmbeddedRedis(tmp_path / "r", appendonly=False, unix_socket=True) as server:
        assert server.unix_url.startswith("unix://")
        assert await roundtrip(server.unix_url, settings) == 42
        conn = await conveyor.connect(server.unix_url, settings=settings)
        kind = (await conn.client.connection_pool.get_connection()).__class__.__name__
        await conn.close()
    assert kind == "UnixDomainSocketConnection"


async def test_tls_url_with_the_servers_ca(tls_server: EmbeddedRedis, settings: Settings) -> None:
    assert tls_server.url.startswith("rediss://")
    trusting = settings.model_copy(update={"redis_tls_ca_file": tls_server.tls_files.ca})
    assert await roundtrip(tls_server.url, trusting) == 42


async def test_tls_refuses_a_server_it_cannot_verify(
    tls_server: EmbeddedRedis, settings: Settings
) -> None:
    conn = await conveyor.connect(tls_server.url, settings=settings)  # no CA configured
    try:
        with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            await conn.client.ping()
    finally:
        await conn.close()


def test_the_sync_producer_speaks_tls_too(tls_server: EmbeddedRedis, settings: Settings) -> None:
    trusting = settings.model_copy(update={"redis_tls_ca_file": tls_server.tls_files.ca})
    conn = conveyor.connect_sync(tls_server.url, settings=trusting)
    try:
        assert conveyor.SyncQueue("sync-tls", conn).add("job", {"ok": True}).id
    finally:
        conn.close()


def test_tls_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked here")
    monkeypatch.setenv("CONVEYOR_REDIS_TLS_CA_FILE", str(ca))
    assert conveyor.load_settings().redis_tls_ca_file == ca


def test_a_missing_tls_file_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_REDIS_TLS_CA_FILE", "/nonexistent/ca.pem")
    with pytest.raises(conveyor.ConfigError) as caught:
        conveyor.load_settings()
    assert caught.value.field == "CONVEYOR_REDIS_TLS_CA_FILE"
    assert "not a readable file" in caught.value.message
