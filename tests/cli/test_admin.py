"""The admin commands against a real Redis: tables, actions and their audit entries."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from click.testing import CliRunner, Result

import conveyor
from conveyor import EmbeddedRedis, Queue, UnrecoverableError, Worker
from conveyor.cli import main
from conveyor.config import Settings
from conveyor.keys import QueueKeys
from tests.conftest import running, wait_for_state


def cli(server: EmbeddedRedis, *args: str, input: str | None = None) -> Result:
    runner = CliRunner(env={"COLUMNS": "400"})
    result = runner.invoke(main, [*args, "--url", server.url], input=input)
    return result


async def _boom(ctx: conveyor.JobContext, data: Any) -> None:
    raise UnrecoverableError("broken")


def seed(server: EmbeddedRedis, name: str, *, dead: int = 0, waiting: int = 0) -> list[str]:
    """Jobs in ``name``: ``dead`` killed by a real worker, then ``waiting`` left waiting."""

    async def go() -> list[str]:
        conn = await conveyor.connect(server.url, settings=Settings(stall_check_interval=0.2))
        try:
            queue = Queue(name, conn)
            ids = [(await queue.add("boom", {"i": i})).id for i in range(dead)]
            if ids:
                async with running(Worker(conn, [name], {"boom": _boom})):
                    for job_id in ids:
                        await wait_for_state(queue, job_id, "dead")
            ids += [(await queue.add("later", None)).id for _ in range(waiting)]
            return ids
        finally:
            await conn.close()

    return asyncio.run(go())


def state_of(server: EmbeddedRedis, name: str, job_id: str) -> str | None:
    client = conveyor.connect_sync(server.url).client
    try:
        state: str | None = client.hget(QueueKeys(name).job_field("state"), job_id)
        return state
    finally:
        client.close()


@pytest.fixture
def name(queue_name: str) -> str:
    return queue_name


def test_queues_and_jobs_commands(redis_server: EmbeddedRedis, name: str) -> None:
    (job_id,) = seed(redis_server, name, waiting=1)
    result = cli(redis_server, "queues")
    assert result.exit_code == 0, result.output
    assert name in result.output
    result = cli(redis_server, "jobs", "ls", name)
    assert result.exit_code == 0 and job_id[:8] in result.output
    result = cli(redis_server, "jobs", "show", name, job_id)
    assert result.exit_code == 0 and "later" in result.output
    result = cli(redis_server, "jobs", "cancel", name, job_id)
    assert result.exit_code == 0 and "cancelled" in result.output
    assert state_of(redis_server, name, job_id) == "cancelled"
    assert cli(redis_server, "jobs", "retry", name, job_id).exit_code == 0
    assert state_of(redis_server, name, job_id) == "waiting"
    assert cli(redis_server, "jobs", "rm", name, job_id).exit_code == 0
    assert state_of(redis_server, name, job_id) is None
    result = cli(redis_server, "jobs", "show", name, job_id)
    assert result.exit_code == 1 and "no job" in result.output
    result = cli(redis_server, "jobs", "ls", "bad:name")
    assert result.exit_code == 1 and "queue" in result.output


def test_dlq_commands(redis_server: EmbeddedRedis, name: str) -> None:
    first, second, third = seed(redis_server, name, dead=3)
    result = cli(redis_server, "dlq", "ls", name)
    assert result.exit_code == 0 and "UnrecoverableError" in result.output
    result = cli(redis_server, "dlq", "requeue", name, "--error-type", "NoSuchError")
    assert "requeued 0" in result.output
    result = cli(redis_server, "dlq", "purge", name, input="n\n")
    assert result.exit_code == 1  # aborted at the prompt
    assert state_of(redis_server, name, first) == "dead"
    result = cli(redis_server, "dlq", "requeue", name, "--name", "boom")
    assert "requeued 3" in result.output
    assert {state_of(redis_server, name, i) for i in (first, second, third)} == {"waiting"}


def test_keys_and_audit_commands(redis_server: EmbeddedRedis, name: str) -> None:
    result = cli(redis_server, "keys", "create", f"ci-{name}", "--role", "operator")
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("cvk_")
    key_id = token[4:16]
    listed = cli(redis_server, "keys", "ls")
    assert key_id in listed.output and "operator" in listed.output
    assert cli(redis_server, "keys", "revoke", key_id).exit_code == 0
    assert cli(redis_server, "keys", "revoke", "000000000000").exit_code == 1
    result = cli(redis_server, "keys", "create", "x", "--role", "root")
    assert result.exit_code == 2
    trail = cli(redis_server, "audit", "--action", "revoke_key", "--limit", "5")
    assert trail.exit_code == 0 and "revoke_key" in trail.output and "cli:" in trail.output
