"""The Lua scripts that make every job state change atomic.

Each ``<name>.lua`` file documents its ARGV and return codes in its header; all share the
KEYS layout and helpers of ``_prelude.lua``, prepended at load time.
"""

from __future__ import annotations

from functools import cache
from hashlib import sha1
from importlib import resources
from typing import Any

from redis.commands.core import Script
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from conveyor.errors import RedisUnavailable
from conveyor.keys import JOB_FIELDS, QUEUE_STRUCTURES
from conveyor.wire import Wire, request

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


@cache
def source(name: str) -> str:
    """Full text of a script, prelude included."""
    if name not in SCRIPT_NAMES:
        raise KeyError(f"no script named {name!r}")
    folder = resources.files(__package__)
    prelude = folder.joinpath("_prelude.lua").read_text()
    # Flow control's keys follow the job fields; their index is fixed here, at load time.
    flow_base = f"local FC_BASE = {len(QUEUE_STRUCTURES) + len(JOB_FIELDS)}\n"
    flow = folder.joinpath("_flow.lua").read_text()
    script = folder.joinpath(f"{name}.lua").read_text()
    if name.startswith("tree_"):  # flows (conveyor.flows) write to several queues
        script = folder.joinpath("_tree.lua").read_text() + "\n" + script
    return flow_base + prelude + "\n" + flow + "\n" + script


#: What the client raises once its own retries (capped, jittered backoff) are used up.
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, ConnectionRefusedError)


def unavailable(script: str, exc: Exception) -> RedisUnavailable:
    return RedisUnavailable(
        f"Redis did not answer {script!r} after the client's retries ({exc}); "
        "check that it is running and that CONVEYOR_REDIS_URL points at it"
    )


class AsyncScripts:
    """The scripts over a :class:`~conveyor.wire.Wire`: EVALSHA, and the source itself
    after NOSCRIPT (a restarted server has forgotten its scripts)."""

    def __init__(self, wire: Wire) -> None:
        self._wire = wire
        self._sha = {name: sha1(source(name).encode()).hexdigest() for name in SCRIPT_NAMES}

    def sha(self, name: str) -> str:
        return self._sha[name]

    async def __call__(self, name: str, keys: list[str], args: list[Any]) -> Any:
        try:
            (reply,) = await self._wire.call(
                request(("EVALSHA", self._sha[name], len(keys), *keys, *args))
            )
            if isinstance(reply, NoScriptError):
                (reply,) = await self._wire.call(
                    request(("EVAL", source(name), len(keys), *keys, *args))
                )
        except UNREACHABLE as exc:
            raise unavailable(name, exc) from exc
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def after(
        self, command: list[Any], name: str, keys: list[str], args: list[Any], *, block: float
    ) -> Any:
        """Send ``command`` (a blocking pop that waits up to ``block`` seconds) and the
        script behind it on one connection: Redis runs the script the moment the command
        returns, with no round trip back to the client in between. Returns the script's
        reply (the command's is not needed)."""
        evalsha = request(("EVALSHA", self._sha[name], len(keys), *keys, *args))
        _, reply = await self._wire.blocking(request(command) + evalsha, 2, block)
        if isinstance(reply, NoScriptError):
            return await self(name, keys, args)
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def pipelined(self, name: str, keys: list[str], calls: list[list[Any]]) -> list[Any]:
        """Several calls of one script sent together, run in order: one round trip for all,
        and Redis runs each while the next is still arriving."""
        head = ("EVALSHA", self._sha[name], len(keys), *keys)
        payload = b"".join(request((*head, *args)) for args in calls)
        try:
            replies = await self._wire.call(payload, len(calls))
            if isinstance(replies[0], NoScriptError):  # then all are: load it, send again
                await self._wire.call(request(("SCRIPT", "LOAD", source(name))))
                replies = await self._wire.call(payload, len(calls))
        except UNREACHABLE as exc:
            raise unavailable(name, exc) from exc
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies


class SyncScripts:
    """Registered scripts for a blocking client."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._scripts: dict[str, Script] = {
            name: client.register_script(source(name)) for name in SCRIPT_NAMES
        }

    def __call__(self, name: str, keys: list[str], args: list[Any], client: Any = None) -> Any:
        try:
            return self._scripts[name](keys=keys, args=args, client=client)
        except UNREACHABLE as exc:
            raise unavailable(name, exc) from exc

    def pipelined(self, name: str, keys: list[str], calls: list[list[Any]]) -> list[Any]:
        """See :meth:`AsyncScripts.pipelined`."""
        pipe = self._client.pipeline(transaction=False)
        for args in calls:
            self._scripts[name](keys=keys, args=args, client=pipe)
        try:
            return list(pipe.execute())
        except UNREACHABLE as exc:
            raise unavailable(name, exc) from exc
