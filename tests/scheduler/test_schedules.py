"""Schedules as data in Redis, and the scripts behind them: every return code, the key state."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

import conveyor
from conveyor import Queue
from conveyor.errors import ScheduleNotFound
from conveyor.scheduler import Schedule, Scheduler, Schedules, fire_job_id
from conveyor.scheduler.model import ms
from conveyor.scheduler.store import SCHEDULED_QUEUES, fire_args


@pytest.fixture
def schedules(conn: conveyor.Connection, queue_name: str) -> Schedules:
    return Schedules(conn, queue_name)


async def next_ms(s: Schedules, sid: str) -> float | None:
    score: float | None = await s.connection.client.zscore(s.keys.key("sched:next"), sid)
    return score


async def test_upsert_creates_then_is_a_no_op_then_updates(schedules: Schedules) -> None:
    s = Schedule("hourly", "report", cron="0 * * * *", tz="Europe/Berlin")
    assert await schedules.upsert(s) == "created"
    first = await next_ms(schedules, "hourly")
    assert first is not None and first % 3_600_000 == 0
    # A second declaration at start-up leaves the stored state alone.
    await schedules.connection.client.zadd(schedules.keys.key("sched:next"), {"hourly": 5})
    assert await schedules.upsert(s) == "unchanged"
    assert await next_ms(schedules, "hourly") == 5
    changed = Schedule("hourly", "report", cron="30 * * * *", tz="Europe/Berlin")
    assert await schedules.upsert(changed) == "updated"
    assert (await next_ms(schedules, "hourly") or 0) % 3_600_000 == 1_800_000
    assert [i.schedule for i in await schedules.list()] == [changed]
    assert schedules.queue in await schedules.connection.client.smembers(SCHEDULED_QUEUES)


async def test_list_gives_next_fire_times_soonest_first(schedules: Schedules) -> None:
    await schedules.upsert(Schedule("yearly", "j", cron="@yearly"))
    await schedules.upsert(Schedule("minutely", "j", every=60))
    infos = await schedules.list()
    assert [i.schedule.id for i in infos] == ["minutely", "yearly"]
    now = datetime.now(UTC)
    assert infos[0].next_fire is not None and now < infos[0].next_fire <= now + timedelta(
        seconds=61
    )
    assert infos[0].runs == 0 and not infos[0].paused and infos[0].last_fire is None


async def test_pause_and_resume(schedules: Schedules) -> None:
    await schedules.upsert(Schedule("s", "j", every=60))
    assert await schedules.pause("s") is True
    assert await next_ms(schedules, "s") is None
    assert await schedules.pause("s") is False  # already paused: code 0
    info = await schedules.get("s")
    assert info.paused and info.next_fire is None
    # An upsert while paused keeps it paused.
    await schedules.upsert(Schedule("s", "j", every=120))
    assert await next_ms(schedules, "s") is None
    assert await schedules.resume("s") is True
    assert await next_ms(schedules, "s") is not None
    assert await schedules.resume("s") is False
    with pytest.raises(ScheduleNotFound):
        await schedules.pause("missing")
    # The script's own refusal for a missing schedule (-1), past the Python check.
    assert await schedules.script("schedule_set_paused", "missing", "1", -1) == -1


async def test_remove(schedules: Schedules) -> None:
    await schedules.upsert(Schedule("s", "j", every=60))
    await schedules.remove("s")
    assert await schedules.list() == []
    for name in ("sched:def", "sched:next", "sched:runs", "sched:paused", "sched:last"):
        assert not await schedules.connection.client.exists(schedules.keys.key(name))
    with pytest.raises(ScheduleNotFound):
        await schedules.remove("s")


async def test_run_now_enqueues_one_job_without_moving_fire_times(
    schedules: Schedules, conn: conveyor.Connection
) -> None:
    await schedules.upsert(Schedule("s", "j", {"x": 1}, every=3600))
    before = await next_ms(schedules, "s")
    added = await schedules.run_now("s")
    job = await Queue(schedules.queue, conn).get_job(added.id)
    assert job.data == {"x": 1} and job.meta["schedule"] == "s"
    assert await next_ms(schedules, "s") == before


async def fire(s: Schedules, schedule: Schedule, expected: int, nxt: int, fires: list[datetime],
               definition: str | None = None) -> list[int]:  # fmt: skip
    args = fire_args(schedule, fires, 1 << 20)
    max_runs = -1 if schedule.max_runs is None else schedule.max_runs
    reply: list[int] = await s.script(
        "schedule_fire", 1000, schedule.id, expected, definition or schedule.to_json(), nxt,
        max_runs, *args,
    )  # fmt: skip
    return reply


async def test_fire_claims_once_and_refuses_stale_or_changed_plans(
    schedules: Schedules, conn: conveyor.Connection
) -> None:
    s = Schedule("s", "j", every=60, start=datetime(2026, 1, 1, tzinfo=UTC))
    await schedules.upsert(s)
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    await conn.client.zadd(schedules.keys.key("sched:next"), {"s": ms(t0)})
    t1 = t0 + timedelta(minutes=1)
    assert await fire(schedules, s, ms(t0), ms(t1), [t0]) == [1, 1]
    assert await next_ms(schedules, "s") == ms(t1)
    # A second instance that read the same next fire time loses the claim; nothing written.
    assert await fire(schedules, s, ms(t0), ms(t1), [t0]) == [-1, 0]
    # A plan made with an old definition is refused.
    assert await fire(schedules, s, ms(t1), ms(t1) + 60_000, [t1], "{}") == [-2, 0]
    queue = Queue(schedules.queue, conn)
    assert await queue.list_ids("waiting") == [fire_job_id("s", t0)]
    info = await schedules.get("s")
    assert info.runs == 1 and info.last_fire == t0 and info.next_fire == t1


async def test_fire_stops_at_max_runs_and_at_the_end(
    schedules: Schedules, conn: conveyor.Connection
) -> None:
    s = Schedule("s", "j", every=60, max_runs=2)
    await schedules.upsert(s)
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    times = [t0 + timedelta(minutes=i) for i in range(3)]
    await conn.client.zadd(schedules.keys.key("sched:next"), {"s": ms(t0)})
    assert await fire(schedules, s, ms(t0), ms(times[-1]) + 60_000, times) == [1, 2]
    assert await next_ms(schedules, "s") is None  # over: two runs done
    assert (await schedules.get("s")).runs == 2
    e = Schedule("e", "j", every=60)
    await schedules.upsert(e)
    await conn.client.zadd(schedules.keys.key("sched:next"), {"e": ms(t0)})
    assert await fire(schedules, e, ms(t0), -1, [t0]) == [1, 1]
    assert await next_ms(schedules, "e") is None


async def test_scheduler_tick_catches_up_per_policy(
    conn: conveyor.Connection, queue_name: str, schedules: Schedules
) -> None:
    now = await schedules.now()
    ten_ago = ms(now) - ms(now) % 60_000 - 10 * 60_000
    for sid, policy in (("skip", "skip"), ("once", "once"), ("all", "all")):
        await schedules.upsert(Schedule(sid, "j", every=60, catch_up=policy, catch_up_limit=4))
        await conn.client.zadd(schedules.keys.key("sched:next"), {sid: ten_ago})
    scheduler = Scheduler(conn, [queue_name])
    await scheduler.tick()
    ids = await Queue(queue_name, conn).list_ids("waiting", limit=100)
    by_schedule = {sid: sorted(i for i in ids if i.startswith(sid + "-")) for sid in
                   ("skip", "once", "all")}  # fmt: skip
    # The most recent fire time is at most 60 s old: on time, so even "skip" runs it.
    latest = ms(now) - ms(now) % 60_000
    assert by_schedule["skip"] == [f"skip-{latest}"]
    assert by_schedule["once"] == [f"once-{latest}"]
    assert by_schedule["all"] == [f"all-{latest - i * 60_000}" for i in (3, 2, 1, 0)]
    assert scheduler.fired == 6
    for sid in ("skip", "once", "all"):
        assert (await schedules.get(sid)).next_fire == datetime.fromtimestamp(
            (latest + 60_000) / 1000, UTC
        )
    job = await Queue(queue_name, conn).get_job(f"all-{latest}")
    assert job.meta["schedule"] == "all"
    assert json.loads(json.dumps(job.meta))["fire_time"].startswith("20")


async def test_a_worker_can_run_the_scheduler(
    conn: conveyor.Connection, queue_name: str, schedules: Schedules, start_worker: object
) -> None:
    import asyncio

    done = asyncio.Event()

    async def tick(ctx: conveyor.JobContext, data: object) -> str:
        done.set()
        return "ok"

    await schedules.upsert(Schedule("fast", "tick", every=0.1))
    async with start_worker({"tick": tick}, schedules=True):  # type: ignore[operator]
        await asyncio.wait_for(done.wait(), 10)


async def test_a_broken_definition_does_not_stop_the_others(
    conn: conveyor.Connection, queue_name: str, schedules: Schedules
) -> None:
    await schedules.upsert(Schedule("good", "j", every=60))
    await conn.client.hset(schedules.keys.key("sched:def"), "bad", '{"id": "bad"}')
    now = ms(await schedules.now())
    due = now - now % 60_000  # a fire time of "good", at most a minute old
    await conn.client.zadd(schedules.keys.key("sched:next"), {"bad": due, "good": due})
    scheduler = Scheduler(conn, [queue_name])
    await scheduler.tick()
    assert scheduler.fired == 1
    # Listing skips what it cannot read instead of failing for every schedule.
    assert [i.schedule.id for i in await schedules.list()] == ["good"]
    await schedules.remove("bad")
