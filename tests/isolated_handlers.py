"""Module-level handlers for process isolation tests (they must be importable by name)."""

from __future__ import annotations

import gc
import signal
import time
from typing import Any


def sleeps_forever(ctx: Any, data: Any) -> None:
    time.sleep(3600)


def ignores_everything(ctx: Any, data: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(0.05)


async def echo(ctx: Any, data: Any) -> Any:
    return data


async def frozen_objects(ctx: Any, data: Any) -> int:
    return gc.get_freeze_count()


#: For ``conveyor worker --app tests.isolated_handlers:HANDLERS``.
HANDLERS = {"echo": echo, "frozen_objects": frozen_objects}
