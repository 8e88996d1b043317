"""A lean Redis client for Conveyor's script calls: RESP over an asyncio protocol.

Every job state change is a script call, so their cost is the engine's. redis-py's asyncio
client spends a few hundred microseconds of CPU on each call on a small machine (a pool
checkout, a retry wrapper, a timeout scope, stream reads), and enqueue-to-start latency
was mostly that. Here a request is one ``transport.write`` and its replies resolve one
future in ``data_received``. Callers share one connection, and Redis answers in the order
the requests went out; a blocking call (a worker's idle wait) gets a connection of its own.

The redis-py client stays for everything else (reads, admin, pub/sub): a :class:`Wire` is
made to match one (:meth:`Wire.matching`: same server, credentials, TLS files, timeouts
and retries), so the two never disagree about where Redis is or how patient to be.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import hiredis
from redis._parsers.base import BaseParser
from redis._parsers.encoders import Encoder
from redis.asyncio.connection import SSLConnection
from redis.exceptions import AuthenticationError, InvalidResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from conveyor.packing import pack_items

_MORE = object()  # hiredis: the buffer holds no whole reply yet
_ENCODER: Any = Encoder("utf-8", "strict", decode_responses=False)  # type: ignore[no-untyped-call]


def request(args: list[Any] | tuple[Any, ...]) -> bytes:
    """One command in RESP. Values redis-py refuses (``None``, bools) raise its DataError."""
    return b"*%d\r\n" % len(args) + request_items(args)


def request_items(args: list[Any] | tuple[Any, ...]) -> bytes:
    """A command's arguments in RESP, without the header that counts them."""
    packed = pack_items(args)
    if packed is None:
        packed = pack_items([bytes(_ENCODER.encode(arg)) for arg in args])
    assert packed is not None
    return packed


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where Redis is and how to open a session there."""

    host: str = "localhost"
    port: int = 6379
    path: str | None = None  # a unix socket
    username: str | None = None
    password: str | None = None
    db: int = 0
    tls: ssl.SSLContext | None = None

    def __str__(self) -> str:
        return self.path or f"{self.host}:{self.port}"


#: Called with a request's replies from ``data_received``: work that should not wait for
#: the caller's task to be resumed (a worker starts the jobs a fetch returned).
Then = Callable[[list[Any]], None]


def _settle(future: asyncio.Future[list[Any]], got: list[Any], then: Then | None) -> None:
    if then is not None:
        try:
            then(got)
        except Exception as exc:  # the caller's error, raised where it awaits
            future.set_exception(exc)
            return
    future.set_result(got)


class _Protocol(asyncio.Protocol):
    """One connection: requests go out in order, replies resolve their futures in order."""

    def __init__(self, timeout: float | None) -> None:
        self._reader = hiredis.Reader(
            encoding="utf-8",
            replyError=BaseParser.parse_error,
            protocolError=InvalidResponse,
            notEnoughData=_MORE,
        )
        self._loop = asyncio.get_running_loop()
        self._waiting: deque[tuple[asyncio.Future[list[Any]], int, Then | None]] = deque()
        self._got: list[Any] = []
        self._transport: asyncio.Transport | None = None
        self._lost: Exception | None = None
        self._timeout = timeout
        self._due = 0.0
        self._timer: asyncio.TimerHandle | None = None

    @property
    def usable(self) -> bool:
        return self._lost is None and self._transport is not None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # An idle connection a NAT or firewall dropped is found without a call waiting.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        try:
            while (reply := self._reader.gets()) is not _MORE:
                self._got.append(reply)
                future, count, then = self._waiting[0]
                if len(self._got) == count:
                    self._waiting.popleft()
                    got, self._got = self._got, []
                    if not future.done():  # a cancelled caller's replies are dropped
                        _settle(future, got, then)
        except Exception as exc:  # garbled, not UTF-8, or a reply nobody asked for
            self._break(RedisConnectionError(f"Redis sent a reply that cannot be read: {exc}"))
            return
        if self._timeout is not None:
            self._due = self._loop.time() + self._timeout

    def connection_lost(self, exc: Exception | None) -> None:
        reason = exc or "closed by the server"
        self._break(RedisConnectionError(f"lost the connection to Redis ({reason})"))

    def request(
        self, payload: bytes, replies: int, block: float = 0.0, then: Then | None = None
    ) -> asyncio.Future[Any]:
        """Send ``payload`` (``replies`` commands); the future gets their replies as a list,
        error replies included as exception objects. ``block``: seconds the server may
        hold the reply on purpose, on top of the timeout. ``then`` is called with the
        replies as they are read, a turn of the event loop before the caller resumes."""
        if self._lost is not None or self._transport is None:
            raise self._lost or RedisConnectionError("not connected to Redis")
        future: asyncio.Future[list[Any]] = self._loop.create_future()
        self._waiting.append((future, replies, then))
        self._transport.write(payload)
        if self._timeout is not None:
            self._due = max(self._due, self._loop.time() + self._timeout + block)
            if self._timer is None:
                self._timer = self._loop.call_at(self._due, self._check)
        return future

    def close(self) -> None:
        self._break(RedisConnectionError("the connection was closed"))

    def _check(self) -> None:
        """Runs at the due time of the oldest unanswered request; a timer per connection,
        not a timeout scope per call."""
        self._timer = None
        if not self._waiting:
            return
        if self._loop.time() < self._due:
            self._timer = self._loop.call_at(self._due, self._check)
            return
        self._break(RedisTimeoutError(f"Redis did not answer within {self._timeout} s"))

    def _break(self, error: Exception) -> None:
        if self._lost is None:
            self._lost = error
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._waiting:
            future, _, _ = self._waiting.popleft()
            if not future.done():
                future.set_exception(self._lost)
                future.exception()  # the caller may have gone; do not log it as unretrieved
        if self._transport is not None:
            self._transport.abort()


class Wire:
    """Script calls over one shared connection, blocking calls over their own."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        timeout: float | None = 15.0,
        connect_timeout: float | None = 2.0,
        retries: int = 4,
        backoff: Callable[[int], float] = lambda failures: 0.0,
    ) -> None:
        self.endpoint = endpoint
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._retries = retries
        self._backoff = backoff
        self._shared: _Protocol | None = None
        self._spare: list[_Protocol] = []
        self._busy: set[_Protocol] = set()  # blocking calls in flight
        self._connecting = asyncio.Lock()
        _WIRES.add(self)

    @classmethod
    def matching(cls, client: Any) -> Wire:
        """A wire to the server of a redis-py asyncio client, with its patience."""
        pool = client.connection_pool
        options = pool.connection_kwargs
        endpoint = Endpoint(
            host=options.get("host", "localhost"),
            port=int(options.get("port", 6379)),
            path=options.get("path"),
            username=options.get("username"),
            password=options.get("password"),
            db=int(options.get("db", 0)),
            tls=_tls_context(options) if issubclass(pool.connection_class, SSLConnection) else None,
        )
        retry = options.get("retry")
        return cls(
            endpoint,
            timeout=options.get("socket_timeout"),
            connect_timeout=options.get("socket_connect_timeout"),
            retries=retry.get_retries() if retry is not None else 0,
            backoff=retry._backoff.compute if retry is not None else (lambda failures: 0.0),
        )

    async def call(self, payload: bytes, replies: int = 1) -> list[Any]:
        """Send ``replies`` pipelined commands and return their replies. A dropped
        connection or a server still loading its data is retried on a new connection,
        with the client's backoff, like redis-py does."""
        failures = 0
        while True:
            try:
                shared = self._shared
                if shared is None or not shared.usable:
                    shared = await self._connect_shared()
                got: list[Any] = await shared.request(payload, replies)
                for reply in got:
                    if isinstance(reply, RedisConnectionError):  # LOADING and the like
                        raise reply
                return got
            except (RedisConnectionError, RedisTimeoutError) as exc:
                if isinstance(exc, AuthenticationError) or failures >= self._retries:
                    raise
                failures += 1
                await asyncio.sleep(self._backoff(failures))

    async def blocking(
        self, payload: bytes, replies: int, block: float, then: Then | None = None
    ) -> list[Any]:
        """Like :meth:`call`, on a connection no other call waits behind, for commands
        the server holds up to ``block`` seconds. Not retried: the caller's loop decides.
        ``then``: see :meth:`_Protocol.request`."""
        spare = self._spare.pop() if self._spare else None
        connection = spare if spare is not None and spare.usable else await self._open()
        self._busy.add(connection)
        try:
            got: list[Any] = await connection.request(payload, replies, block, then)
        except BaseException:
            connection.close()  # its replies may still come: it cannot be reused
            raise
        finally:
            self._busy.discard(connection)
        if connection.usable:
            self._spare.append(connection)
        return got

    async def close(self) -> None:
        """Close every connection; calls still waiting fail with a connection error."""
        for connection in [self._shared, *self._spare, *self._busy]:
            if connection is not None:
                connection.close()
        self._forget()

    def _forget(self) -> None:
        self._shared, self._spare, self._busy = None, [], set()

    async def _connect_shared(self) -> _Protocol:
        async with self._connecting:
            if self._shared is None or not self._shared.usable:
                self._shared = await self._open()
            return self._shared

    async def _open(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        endpoint = self.endpoint

        def made() -> _Protocol:
            return _Protocol(self._timeout)

        try:
            async with asyncio.timeout(self._connect_timeout):
                if endpoint.path is not None:
                    _, connection = await loop.create_unix_connection(made, endpoint.path)
                else:
                    _, connection = await loop.create_connection(
                        made, endpoint.host, endpoint.port, ssl=endpoint.tls
                    )
        except (OSError, TimeoutError) as exc:
            raise RedisConnectionError(f"cannot connect to Redis at {endpoint}: {exc}") from exc
        await _start_session(connection, endpoint)
        return connection


#: Every wire of this process, so a forked child drops its parent's connections: they
#: share the parent's sockets, and a reply read by one process is lost to the other.
_WIRES: weakref.WeakSet[Wire] = weakref.WeakSet()


def _forget_after_fork() -> None:
    for wire in list(_WIRES):
        wire._forget()  # not closed: the sockets are the parent's to close
        wire._connecting = asyncio.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


async def _start_session(connection: _Protocol, endpoint: Endpoint) -> None:
    commands: list[tuple[Any, ...]] = []
    if endpoint.password is not None:
        credentials: tuple[str, ...] = (endpoint.password,)
        if endpoint.username is not None:
            credentials = (endpoint.username, endpoint.password)
        commands.append(("AUTH", *credentials))
    if endpoint.db:
        commands.append(("SELECT", endpoint.db))
    if not commands:
        return
    replies = await connection.request(b"".join(map(request, commands)), len(commands))
    for reply in replies:
        if isinstance(reply, Exception):
            connection.close()
            raise reply


def _tls_context(options: dict[str, Any]) -> ssl.SSLContext:
    """Verify the server as redis-py does by default (certificate and host name)."""
    context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
    if options.get("ssl_certfile"):
        context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"))
    return context
