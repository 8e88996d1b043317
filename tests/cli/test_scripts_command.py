"""``conveyor scripts ls|prune``: other versions' libraries are listed and dropped, nothing else."""

from __future__ import annotations

import asyncio

import conveyor
from conveyor import EmbeddedRedis, Queue
from conveyor.scripts import library
from tests.cli.test_admin import cli

OLD = "conveyor_0123456789ab"


async def _libraries(server: EmbeddedRedis, load: bool = False) -> list[str]:
    conn = await conveyor.connect(server.url)
    try:
        if load:
            await conn.scripts.load()
            for name in (OLD, "someone_else"):
                code = f"#!lua name={name}\nredis.register_function('{name}_f', function() end)"
                await conn.client.function_load(code, replace=True)
        listed = await conn.client.function_list()
        return sorted(entry[1] for entry in listed)
    finally:
        await conn.close()


def test_prune_drops_other_conveyor_versions_only(
    own_server: EmbeddedRedis, queue_name: str
) -> None:
    current = library()[0]
    assert asyncio.run(_libraries(own_server, load=True)) == sorted([OLD, current, "someone_else"])
    listed = cli(own_server, "scripts", "ls")
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert any(current in line and "this version" in line for line in lines)
    assert any(OLD in line and "other version" in line for line in lines)
    assert "someone_else" not in listed.output

    pruned = cli(own_server, "scripts", "prune")
    assert pruned.exit_code == 0, pruned.output
    assert f"dropped 1 library: {OLD}" in pruned.output
    assert asyncio.run(_libraries(own_server)) == sorted([current, "someone_else"])
    assert "dropped 0 libraries" in cli(own_server, "scripts", "prune").output
    audit = cli(own_server, "audit")
    assert "prune_scripts" in audit.output

    async def still_works() -> str:
        conn = await conveyor.connect(own_server.url)
        try:
            return (await Queue(queue_name, conn).add("x")).outcome
        finally:
            await conn.close()

    assert asyncio.run(still_works()) == "created"
