"""The embedded server: a real redis-server child process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis

from conveyor import EmbeddedRedis, load_settings
from conveyor.config import Settings
from conveyor.connection import connect
from conveyor.errors import ConfigError


def test_start_stop_and_aof_survives_restart(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path).start()
    client = redis.Redis.from_url(server.url)
    client.set("k", "v")
    server.restart(hard=True)  # SIGKILL: only what the AOF synced survives
    client = redis.Redis.from_url(server.url)
    assert client.get("k") == b"v"
    assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    server.stop()
    assert server.pid is None


def test_password_protected_server(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path, password="s3cret") as server:
        assert redis.Redis.from_url(server.url).ping()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=server.port).ping()


async def test_connect_without_url_starts_embedded_server(tmp_path: Path) -> None:
    conn = await connect(settings=Settings(data_dir=tmp_path))
    try:
        assert conn.server is not None
        assert await conn.client.ping()
        assert (tmp_path / "redis").is_dir()
    finally:
        await conn.close()
    assert conn.server.pid is None


def test_settings_reject_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_REDIS_URL", "http://localhost")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.field == "CONVEYOR_REDIS_URL"
    monkeypatch.setenv("CONVEYOR_REDIS_URL", "unix:///tmp/redis.sock")
    assert load_settings().redis_url == "unix:///tmp/redis.sock"
    monkeypatch.setenv("CONVEYOR_LEASE_SECONDS", "-1")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.field == "CONVEYOR_LEASE_SECONDS"


def test_the_server_has_a_process_group_of_its_own(tmp_path: Path) -> None:
    """Ctrl-C in a terminal reaches the whole foreground group: the server must not stop
    before its owner has written what it writes on the way out."""
    with EmbeddedRedis(tmp_path, appendonly=False) as server:
        assert server.pid is not None
        assert os.getpgid(server.pid) == server.pid != os.getpgid(0)
