"""Process isolation: run a handler in a child process that can be killed on timeout.

Threads cannot be stopped and async code can ignore cancellation; a child process can
always be killed. The handler is passed by import path and the data as JSON text, so
nothing is pickled but strings.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import multiprocessing
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from typing import Any

from conveyor.errors import ConveyorError, JobTimeout, UnrecoverableError

_CONTEXT = multiprocessing.get_context("spawn")


class IsolatedHandlerError(ConveyorError):
    """An exception raised by a handler in its child process, by type name."""

    def __init__(self, type_name: str, message: str, traceback_text: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.traceback_text = traceback_text


@dataclass(frozen=True, slots=True)
class IsolatedContext:
    """The child's view of the job: identity only (progress is not reported from a child)."""

    id: str
    name: str
    queue: str
    attempt: int
    meta: dict[str, str]


def import_path(function: Callable[..., Any]) -> str:
    qualname = function.__qualname__
    if "<locals>" in qualname or "<lambda>" in qualname:
        raise UnrecoverableError(
            f"{qualname} cannot run isolated: use a module-level function, importable by name"
        )
    return f"{function.__module__}:{qualname}"


def _resolve(path: str) -> Callable[..., Any]:
    module_name, _, qualname = path.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target  # type: ignore[no-any-return]


def _child_main(path: str, context: dict[str, Any], data_json: str, pipe: Connection) -> None:
    try:
        function = _resolve(path)
        result = function(IsolatedContext(**context), json.loads(data_json))
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        pipe.send_bytes(json.dumps({"ok": result}).encode())
    except BaseException as exc:  # the parent decides what the failure means
        failure = {
            "type": type(exc).__name__,
            "message": str(exc),
            "traceback": traceback.format_exc(),
        }
        pipe.send_bytes(json.dumps({"error": failure}).encode())
    finally:
        pipe.close()


async def run_isolated(
    function: Callable[..., Any],
    context: IsolatedContext,
    data: Any,
    timeout: float | None,
    grace: float,
) -> Any:
    """Run ``function`` in a new process; kill it if it outlives ``timeout`` + ``grace``."""
    receiver, sender = _CONTEXT.Pipe(duplex=False)
    process = _CONTEXT.Process(
        target=_child_main,
        args=(import_path(function), asdict(context), json.dumps(data), sender),
        daemon=True,
    )
    process.start()
    sender.close()
    try:
        ready = await asyncio.to_thread(receiver.poll, timeout)
        if not ready:
            raise JobTimeout(f"isolated handler ran longer than {timeout}s; its process was killed")
        reply = json.loads(receiver.recv_bytes())
    except EOFError:
        raise IsolatedHandlerError(
            "ProcessDied", f"the handler's process exited with code {process.exitcode}", ""
        ) from None
    finally:
        receiver.close()
        await _reap(process, grace)
    if "error" in reply:
        error = reply["error"]
        if error["type"] == "UnrecoverableError":
            raise UnrecoverableError(error["message"])
        raise IsolatedHandlerError(error["type"], error["message"], error["traceback"])
    return reply["ok"]


async def _reap(process: Any, grace: float) -> None:
    await asyncio.to_thread(process.join, 0.5)
    if process.is_alive():
        process.terminate()
        await asyncio.to_thread(process.join, grace)
    if process.is_alive():
        process.kill()
        await asyncio.to_thread(process.join)
