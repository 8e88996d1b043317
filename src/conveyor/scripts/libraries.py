"""The Conveyor function libraries a server holds, and dropping those of other versions.

Each Conveyor version loads its own library (``conveyor_<digest>``), so after an upgrade the
old one stays on the server until it is dropped. Dropping a library that a still-running
older worker uses is safe: its next call finds the library missing and loads it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conveyor.connection import Connection
from conveyor.scripts import library

PREFIX = "conveyor_"


@dataclass(frozen=True, slots=True)
class InstalledLibrary:
    name: str
    functions: int
    current: bool  # this version's


async def installed(connection: Connection) -> list[InstalledLibrary]:
    """Every Conveyor library on the server, this version's marked ``current``."""
    current = library()[0]
    reply: list[Any] = await connection.client.function_list(library=f"{PREFIX}*")
    found = []
    for entry in reply:
        fields = dict(zip(entry[::2], entry[1::2], strict=True))
        name = str(fields["library_name"])
        if name.startswith(PREFIX):  # the pattern is a glob: '_' is literal, but be sure
            found.append(InstalledLibrary(name, len(fields["functions"]), name == current))
    return sorted(found, key=lambda lib: (not lib.current, lib.name))


async def prune(connection: Connection) -> list[str]:
    """Drop every Conveyor library but this version's; returns the names dropped."""
    dropped = []
    for lib in await installed(connection):
        if not lib.current:
            await connection.client.function_delete(lib.name)
            dropped.append(lib.name)
    return dropped
