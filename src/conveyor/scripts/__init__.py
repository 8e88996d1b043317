"""The Lua scripts that make every job state change atomic.

Each ``<name>.lua`` file documents its ARGV and return codes in its header; all share the
KEYS layout and helpers of ``_prelude.lua`` (and ``_flow.lua``, ``_tree.lua``). They are
loaded into Redis as one function library (``FUNCTION LOAD``), each script a function:
the helpers are defined once per load instead of once per call, which an ``EVALSHA`` of
the same text would redo every time (about 25 µs of server CPU per call). The library's
name carries a digest of its text, so two Conveyor versions can share a server.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from hashlib import sha1
from importlib import resources
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from conveyor.errors import RedisUnavailable
from conveyor.keys import JOB_FIELDS, QUEUE_STRUCTURES
from conveyor.wire import Wire, request, request_items

SCRIPT_NAMES = (
    "add",
    "fetch",
    "complete",
    "fail",
    "extend",
    "recover_stalled",
    "release",
    "promote",
    "cancel",
    "requeue",
    "remove",
    "set_paused",
    "progress",
    "change_priority",
    "add_guarded",
    "schedule_upsert",
    "schedule_fire",
    "schedule_set_paused",
    "schedule_remove",
    "tree_add",
    "tree_complete",
    "tree_fail",
    "tree_settle",
    "tree_cancel",
    "set_limits",
    "set_key_limits",
)

_HELPERS = ("_prelude.lua", "_flow.lua", "_tree.lua")
HEADS_KEPT = 1024  # encoded (function, keys) heads kept per client


def _read(file: str) -> str:
    return resources.files(__package__).joinpath(file).read_text()


@cache
def source(name: str) -> str:
    """A script's own text (without the shared helpers)."""
    if name not in SCRIPT_NAMES:
        raise KeyError(f"no script named {name!r}")
    return _read(f"{name}.lua")


@cache
def library() -> tuple[str, str]:
    """The library's name and its text, as ``FUNCTION LOAD`` takes it."""
    # Flow control's keys follow the job fields; their index is fixed here, at load time.
    parts = [
        "local KEYS, ARGV -- this call's, set by begin()",
        f"local FC_BASE = {len(QUEUE_STRUCTURES) + len(JOB_FIELDS)}",
        *(_read(file) for file in _HELPERS),
        "local function begin(keys, args)",
        "  KEYS, ARGV = keys, args",
        "  bind_queue_keys()",
        "  bind_flow_keys()",
        "end",
    ]
    for name in SCRIPT_NAMES:  # prefixed: a script may share a name with no helper
        parts += [f"local function script_{name}()", source(name), "end"]
    body = "\n".join(parts)
    digest = sha1(body.encode()).hexdigest()[:12]
    registrations = [
        f"redis.register_function('{function_name(name, digest)}', "
        f"function(keys, args) begin(keys, args) return script_{name}() end)"
        for name in SCRIPT_NAMES
    ]
    text = "\n".join([f"#!lua name=conveyor_{digest}", body, *registrations, ""])
    return f"conveyor_{digest}", text


def function_name(script: str, digest: str | None = None) -> str:
    """The name ``FCALL`` uses for ``script`` in this version's library."""
    digest = digest or library()[0].removeprefix("conveyor_")
    return f"conveyor_{digest}_{script}"


def is_missing(reply: Any) -> bool:
    """The server does not have this version's library (new, flushed or restarted). The
    message ends the error: redis-py puts a pipeline's command in front of it."""
    return isinstance(reply, ResponseError) and str(reply).endswith("Function not found")


def is_loaded_already(error: Exception) -> bool:
    """Another client loaded the library first: as good as loading it."""
    return "already exists" in str(error)


#: What the client raises once its own retries (capped, jittered backoff) are used up.
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, ConnectionRefusedError)


def unavailable(script: str, exc: Exception) -> RedisUnavailable:
    return RedisUnavailable(
        f"Redis did not answer {script!r} after the client's retries ({exc}); "
        "check that it is running and that CONVEYOR_REDIS_URL points at it"
    )


class AsyncScripts:
    """The library's functions over a :class:`~conveyor.wire.Wire`: ``FCALL``, after
    loading the library where the server does not have it (new, flushed, restarted)."""

    def __init__(self, wire: Wire) -> None:
        self._wire = wire
        self._names = {name: function_name(name) for name in SCRIPT_NAMES}
        self._load = request(("FUNCTION", "LOAD", library()[1]))
        self._heads: dict[tuple[str, tuple[str, ...]], tuple[int, bytes]] = {}

    def _fcall(self, name: str, keys: list[str], args: list[Any]) -> bytes:
        # A queue's calls repeat the same function name and thirty-odd keys: encoded once.
        known = (name, tuple(keys))
        head = self._heads.get(known)
        if head is None:
            if len(self._heads) >= HEADS_KEPT:
                self._heads.clear()
            words = ("FCALL", self._names[name], len(keys), *keys)
            head = self._heads[known] = (len(words), request_items(words))
        count, items = head
        return b"*%d\r\n" % (count + len(args)) + items + request_items(args)

    async def load(self) -> None:
        (reply,) = await self._wire.call(self._load)
        if isinstance(reply, Exception) and not is_loaded_already(reply):
            raise reply

    async def __call__(self, name: str, keys: list[str], args: list[Any]) -> Any:
        call = self._fcall(name, keys, args)
        try:
            (reply,) = await self._wire.call(call)
            if is_missing(reply):
                await self.load()
                (reply,) = await self._wire.call(call)
        except UNREACHABLE as exc:
            raise unavailable(name, exc) from exc
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def after(
        self,
        command: list[Any],
        name: str,
        keys: list[str],
        args: list[Any],
        *,
        block: float,
        then: Callable[[list[Any]], None] | None = None,
    ) -> Any:
        """Send ``command`` (a blocking pop that waits up to ``block`` seconds) and the
        script behind it on one connection: Redis runs the script the moment the command
        returns, with no round trip back to the client in between. Returns the script's
        reply (the command's is not needed); ``then`` gets a list reply as soon as it is
        read (see :class:`conveyor.wire.Then`)."""
        payload = request(command) + self._fcall(name, keys, args)

        def handed(replies: list[Any]) -> None:
            if then is not None and isinstance(replies[1], list):
                then(replies[1])

        _, reply = await self._wire.blocking(payload, 2, block, handed if then else None)
        if is_missing(reply):
            return await self(name, keys, args)
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def pipelined(self, name: str, keys: list[str], calls: list[list[Any]]) -> list[Any]:
        """Several calls of one script sent together, run in order: one round trip for all,
        and Redis runs each while the next is still arriving."""
        payload = b"".join(self._fcall(name, keys, args) for args in calls)
        try:
            replies = await self._wire.call(payload, len(calls))
            if is_missing(replies[0]):  # then all are: load the library, send again
                await self.load()
                replies = await self._wire.call(payload, len(calls))
        except UNREACHABLE as exc:
            raise unavailable(name, exc) from exc
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies


class SyncScripts:
    """The same functions for a blocking redis-py client."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._names = {name: function_name(name) for name in SCRIPT_NAMES}

    def load(self) -> None:
        try:
            self._client.function_load(library()[1])
        except ResponseError as exc:
            if not is_loaded_already(exc):
                raise

    def __call__(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return self._with_library(
            name, lambda: self._client.fcall(self._names[name], len(keys), *keys, *args)
        )

    def pipelined(self, name: str, keys: list[str], calls: list[list[Any]]) -> list[Any]:
        """See :meth:`AsyncScripts.pipelined`."""
        replies: list[Any] = self._with_library(name, lambda: self._send(name, keys, calls))
        return replies

    def _with_library(self, name: str, send: Callable[[], Any]) -> Any:
        """``send()``, again after loading the library where the server lacks it."""
        try:
            try:
                return send()
            except ResponseError as exc:
                if not is_missing(exc):
                    raise
            self.load()
            return send()
        except UNREACHABLE as exc:
            raise unavailable(name, exc) from exc

    def _send(self, name: str, keys: list[str], calls: list[list[Any]]) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for args in calls:
            pipe.fcall(self._names[name], len(keys), *keys, *args)
        return list(pipe.execute())
