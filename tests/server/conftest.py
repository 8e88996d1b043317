"""Fixtures for the operations server: a real uvicorn server on a free port, in a thread
with its own event loop, talking to the suite's real Redis; API keys of each role."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn

import conveyor
from conveyor import EmbeddedRedis
from conveyor.embedded import free_port
from conveyor.server import KeyStore, ServerSettings, create_app


class LiveServer:
    """uvicorn serving the app in a background thread; ``url`` is its base URL."""

    def __init__(self, settings: ServerSettings, redis_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = create_app(settings, redis_url=redis_url)
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning",
            timeout_graceful_shutdown=1, lifespan="on",
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the API server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def test_settings(**overrides: Any) -> ServerSettings:
    base: dict[str, Any] = {
        "rate_limit_per_minute": 1_000_000, "auth_failures_per_minute": 1_000_000,
        "redis_timeout": 2.0,
    }  # fmt: skip
    return ServerSettings(**{**base, **overrides})


@contextlib.contextmanager
def serving(redis_url: str, **overrides: Any) -> Iterator[LiveServer]:
    server = LiveServer(test_settings(**overrides), redis_url).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def live_server(redis_server: EmbeddedRedis) -> Iterator[LiveServer]:
    with serving(redis_server.url) as server:
        yield server


@pytest.fixture
def make_server(redis_server: EmbeddedRedis) -> Iterator[Callable[..., LiveServer]]:
    """Start a server with custom settings (stopped at the end of the test)."""
    started: list[LiveServer] = []

    def make(redis_url: str | None = None, **overrides: Any) -> LiveServer:
        server = LiveServer(test_settings(**overrides), redis_url or redis_server.url).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
async def tokens(conn: conveyor.Connection) -> dict[str, str]:
    """A fresh key per role (fresh, so rate-limit counters start at zero)."""
    store = KeyStore(conn)
    out = {}
    for role in ("viewer", "operator", "admin"):
        _, token = await store.create(f"test-{role}", role)
        out[role] = token
    return out


def client_for(server: LiveServer, token: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30)


@pytest.fixture
async def admin(
    live_server: LiveServer, tokens: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(live_server, tokens["admin"]) as client:
        yield client


@pytest.fixture
async def operator(
    live_server: LiveServer, tokens: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(live_server, tokens["operator"]) as client:
        yield client


@pytest.fixture
async def viewer(
    live_server: LiveServer, tokens: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(live_server, tokens["viewer"]) as client:
        yield client


@pytest.fixture
async def anonymous(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(live_server, None) as client:
        yield client


def assert_error(response: httpx.Response, status: int, code: str, field: str | None = ...) -> None:  # type: ignore[assignment]
    """The response is the uniform error envelope with this status and code."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "field"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    if field is not ...:
        assert body["error"]["field"] == field, body
