"""Bad input: each case raises a typed error naming the field, and nothing is written."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

import conveyor
from conveyor import Backoff, JobOptions, Queue, SyncQueue
from conveyor.config import load_settings

QUEUE_NAMES = [
    ("", "empty"),
    ("a" * 101, "too long"),
    ("a:b", "colon"),
    ("a{b", "brace"),
    ("a}b", "brace"),
    ("a*", "glob"),
    ("a?", "glob"),
    ("a[b]", "glob"),
    ("a b", "space"),
    ("a\tb", "tab"),
    ("a\nb", "newline"),
    ("a\x00b", "NUL"),
    ("a\x7fb", "DEL"),
    (42, "not a string"),
]


@pytest.mark.parametrize(("name", "why"), QUEUE_NAMES, ids=[w for _, w in QUEUE_NAMES])
def test_bad_queue_names_are_refused(conn: conveyor.Connection, name: Any, why: str) -> None:
    with pytest.raises(conveyor.InvalidQueueName) as caught:
        Queue(name, conn)
    assert caught.value.field == "queue"
    assert caught.value.message


JOB_IDS = [("", "empty"), ("x" * 201, "too long"), ("a:b", "colon"), ("a\nb", "control")]


@pytest.mark.parametrize(("job_id", "why"), JOB_IDS, ids=[w for _, w in JOB_IDS])
def test_bad_job_ids_are_refused(job_id: str, why: str) -> None:
    with pytest.raises(conveyor.InvalidJobId) as caught:
        JobOptions(job_id=job_id)
    assert caught.value.field == "job_id"


OPTIONS = [
    ({"delay": -1}, "delay"),
    ({"delay": math.inf}, "delay"),
    ({"delay": math.nan}, "delay"),
    ({"delay": "soon"}, "delay"),
    ({"priority": 1001}, "priority"),
    ({"priority": -1001}, "priority"),
    ({"priority": 1.5}, "priority"),
    ({"priority": True}, "priority"),
    ({"attempts": 0}, "attempts"),
    ({"attempts": -3}, "attempts"),
    ({"attempts": 2.0}, "attempts"),
    ({"timeout": 0}, "timeout"),
    ({"timeout": -5}, "timeout"),
    ({"timeout": math.inf}, "timeout"),
    ({"backoff": "exponential"}, "backoff"),
    ({"meta": {"tenant": 7}}, "meta.tenant"),
]


@pytest.mark.parametrize(("kwargs", "field"), OPTIONS, ids=[str(k) for k, _ in OPTIONS])
def test_bad_job_options_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(conveyor.InvalidJobOptions) as caught:
        JobOptions(**kwargs)
    assert caught.value.field == field
    assert field in str(caught.value)


@pytest.mark.parametrize("jitter", [-0.1, 1.5, math.nan])
def test_jitter_outside_0_1_is_refused(jitter: float) -> None:
    with pytest.raises(conveyor.InvalidJobOptions) as caught:
        Backoff.exponential(1.0, jitter=jitter)
    assert caught.value.field == "backoff.jitter"


def nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


class Opaque:
    pass


BAD_DATA = [
    ({"when": Opaque()}, conveyor.InvalidJobData, "not JSON-serialisable"),
    ({"ratio": math.nan}, conveyor.InvalidJobData, "NaN"),
    ({"big": math.inf}, conveyor.InvalidJobData, "Infinity"),
    ([-math.inf], conveyor.InvalidJobData, "inf"),
    ({1.5: "float key"}, conveyor.InvalidJobData, "JSON object keys are strings"),
    ({"a": {2: "int key"}}, conveyor.InvalidJobData, "JSON object keys are strings"),
    (nested(10_000), conveyor.InvalidJobData, "nested deeper"),
    ("x" * (512 * 1024 + 1), conveyor.PayloadTooLarge, "CONVEYOR_MAX_PAYLOAD_BYTES"),
]


async def assert_nothing_written(queue: Queue) -> None:
    assert await queue.connection.client.keys(f"cv:{{{queue.name}}}:*") == []
    assert not await queue.connection.client.sismember("cv:queues", queue.name)


@pytest.mark.parametrize(("data", "error", "says"), BAD_DATA, ids=[s for *_, s in BAD_DATA])
async def test_bad_data_is_refused_before_anything_is_written(
    queue: Queue, data: Any, error: type[Exception], says: str
) -> None:
    with pytest.raises(error) as caught:
        await queue.add("job", data)
    assert says in str(caught.value)
    assert caught.value.field == "data"  # type: ignore[attr-defined]
    await assert_nothing_written(queue)


async def test_a_bad_job_in_a_bulk_add_fails_the_whole_call(queue: Queue) -> None:
    jobs: list[Any] = [("ok", {"n": i}) for i in range(10)]
    jobs[7] = ("ok", {"n": math.nan})
    with pytest.raises(conveyor.InvalidJobData) as caught:
        await queue.add_bulk(jobs)
    assert caught.value.field == "jobs[7].data"
    await assert_nothing_written(queue)


@pytest.mark.parametrize("item", [("only-a-name",), "name", ("n", {}, {"delay": 1}), None])
async def test_malformed_bulk_items_are_refused(queue: Queue, item: Any) -> None:
    with pytest.raises(conveyor.InvalidJobData) as caught:
        await queue.add_bulk([("ok", 1), item])
    assert caught.value.field == "jobs[1]"
    await assert_nothing_written(queue)


@pytest.mark.parametrize("size", [0, -1, 2.5, True, "10"])
async def test_bad_bulk_chunk_sizes_are_refused(queue: Queue, size: Any) -> None:
    with pytest.raises(conveyor.InvalidJobOptions) as caught:
        await queue.add_bulk([("ok", 1)], chunk_size=size)
    assert caught.value.field == "chunk_size"
    await assert_nothing_written(queue)


@pytest.mark.parametrize("name", ["", "a:b", "x" * 201, 5])
async def test_bad_job_names_are_refused(queue: Queue, name: Any) -> None:
    with pytest.raises(conveyor.InvalidJobData) as caught:
        await queue.add(name, {})
    assert caught.value.field == "name"
    await assert_nothing_written(queue)


def test_the_sync_producer_refuses_the_same_input(
    redis_server: conveyor.EmbeddedRedis, queue_name: str
) -> None:
    conn = conveyor.connect_sync(redis_server.url)
    try:
        queue = SyncQueue(queue_name, conn)
        with pytest.raises(conveyor.InvalidJobData):
            queue.add("job", {"x": math.nan})
        with pytest.raises(conveyor.PayloadTooLarge):
            queue.add("job", "x" * (conn.settings.max_payload_bytes + 1))
        with pytest.raises(conveyor.InvalidJobOptions):
            queue.add_bulk([("job", 1)], chunk_size=0)
        assert conn.client.keys(f"cv:{{{queue_name}}}:*") == []
    finally:
        conn.close()


async def test_changing_priority_out_of_range_changes_nothing(queue: Queue) -> None:
    added = await queue.add("job", None)
    with pytest.raises(conveyor.InvalidJobOptions):
        await queue.change_priority(added.id, 5000)
    assert (await queue.get_job(added.id)).priority == 0


SETTINGS = [
    ({"redis_url": "http://localhost:6379"}, "CONVEYOR_REDIS_URL", "scheme"),
    ({"lease_seconds": 0}, "CONVEYOR_LEASE_SECONDS", "greater than 0"),
    ({"max_payload_bytes": -1}, "CONVEYOR_MAX_PAYLOAD_BYTES", "greater than 0"),
    ({"log_level": "LOUD"}, "CONVEYOR_LOG_LEVEL", "DEBUG"),
    ({"max_stalls": "many"}, "CONVEYOR_MAX_STALLS", "integer"),
]


@pytest.mark.parametrize(("overrides", "field", "says"), SETTINGS, ids=[f for _, f, _ in SETTINGS])
def test_bad_settings_name_their_environment_variable(
    overrides: dict[str, Any], field: str, says: str
) -> None:
    with pytest.raises(conveyor.ConfigError) as caught:
        load_settings(**overrides)
    assert caught.value.field == field
    assert says in caught.value.message


def test_bad_settings_from_the_environment_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_REDIS_URL", "mysql://db")
    with pytest.raises(conveyor.ConfigError) as caught:
        load_settings()
    assert caught.value.field == "CONVEYOR_REDIS_URL"


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:1/0", "rediss://127.0.0.1:1", "unix:///tmp/x.sock"]
)
def test_the_three_url_schemes_are_accepted(url: str) -> None:
    assert load_settings(redis_url=url).redis_url == url


def test_never_pickle() -> None:
    import conveyor.codec
    import conveyor.queue
    import conveyor.worker

    for module in (conveyor.codec, conveyor.queue, conveyor.worker):
        assert "pickle" not in Path(module.__file__ or "").read_text()
