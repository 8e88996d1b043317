"""Serving the API inside another program's event loop (the demo does this)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn

from conveyor.connection import Connection
from conveyor.embedded import free_port
from conveyor.server.app import create_app
from conveyor.server.auth import KeyStore
from conveyor.server.settings import ServerSettings


class _GuestServer(uvicorn.Server):
    """uvicorn without its signal handlers: the host program owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class RunningApi:
    url: str
    token: str
    server: uvicorn.Server
    task: asyncio.Task[None]

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 10)


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


async def serve_in_loop(
    connection: Connection, settings: ServerSettings, *, key_name: str = "demo-admin"
) -> RunningApi:
    """Start the API on ``settings.port`` (or a free port if taken) with a new admin key."""
    wanted = settings.port
    port = wanted if wanted and _port_free(settings.host, wanted) else free_port()
    app = create_app(settings, connection=connection)
    config = uvicorn.Config(
        app, host=settings.host, port=port, log_level="warning", access_log=False,
        timeout_graceful_shutdown=1,
    )  # fmt: skip
    server = _GuestServer(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # surfaces the start-up error
            raise RuntimeError("the API server stopped during start-up")
        await asyncio.sleep(0.01)
    _, token = await KeyStore(connection).create(key_name, "admin")
    return RunningApi(f"http://{settings.host}:{port}/api/v1", token, server, task)
