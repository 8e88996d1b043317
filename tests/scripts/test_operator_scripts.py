"""recover_stalled, promote, cancel, requeue, remove, set_paused, progress, change_priority."""

from __future__ import annotations

import json

from tests.scripts.conftest import MAXLEN, Lua
from tests.scripts.test_lifecycle_scripts import NO_TRIM, fail


async def expire(lua: Lua, job_id: str) -> None:
    """Make a lease look long expired, as if its worker died."""
    await lua.r.zadd(lua.keys.active, {job_id: 1}, xx=True)


async def recover(lua: Lua, max_stalls: int = 1) -> list[list[str]]:
    reply: list[list[str]] = await lua("recover_stalled", MAXLEN, max_stalls, 100, NO_TRIM, NO_TRIM)
    return reply


async def test_recover_stalled_returns_an_expired_job_to_the_front_of_waiting(lua: Lua) -> None:
    await lua.lease("stalled")
    await lua.lease("healthy")
    await lua.add("queued")
    await expire(lua, "stalled")
    assert await recover(lua) == [["stalled"], []]
    assert await lua.members("waiting") == ["stalled", "queued"]
    assert await lua.where("healthy") == ["active"]
    assert await lua.field("stalls", "stalled") == "1"
    history = json.loads(await lua.field("history", "stalled") or "")
    assert history[-1]["outcome"] == "stalled" and history[-1]["worker"] == "w1"
    assert ("stalled", "stalled") in await lua.events()


async def test_recover_stalled_buries_a_job_past_max_stalls(lua: Lua) -> None:
    await lua.lease("a")
    await expire(lua, "a")
    assert await recover(lua, max_stalls=1) == [["a"], []]
    await lua.fetch()
    await expire(lua, "a")
    assert await recover(lua, max_stalls=1) == [[], ["a"]]
    assert await lua.where("a") == ["dead"]
    assert json.loads(await lua.field("error", "a") or "")["type"] == "Stalled"


async def test_recover_stalled_leaves_live_leases_alone(lua: Lua) -> None:
    await lua.lease("a")
    before = await lua.snapshot()
    assert await recover(lua) == [[], []]
    assert await lua.snapshot() == before


async def test_a_recovered_job_cannot_be_completed_with_the_old_token(lua: Lua) -> None:
    token = await lua.lease("a")
    await expire(lua, "a")
    await recover(lua)
    codes, _ = await lua.complete("a", token)
    assert codes == [0]
    assert await lua.where("a") == ["waiting"]


async def test_promote_moves_delayed_jobs_and_skips_others(lua: Lua) -> None:
    await lua.add("d", delay_ms=60_000)
    await lua.add("w")
    assert await lua("promote", MAXLEN, "d", "w", "missing") == [1, 0, 0]
    assert await lua.where("d") == ["waiting"]
    assert await lua.field("ready", "d") is None
    assert ("d", "promoted") in await lua.events()


async def cancel(lua: Lua, job_id: str) -> int:
    return int(await lua("cancel", MAXLEN, NO_TRIM, NO_TRIM, job_id, "not needed"))


async def test_cancel_of_waiting_and_delayed_jobs_moves_them_to_cancelled(lua: Lua) -> None:
    await lua.add("w")
    await lua.add("d", delay_ms=60_000)
    assert await cancel(lua, "w") == 1
    assert await cancel(lua, "d") == 1
    assert await lua.where("w") == ["cancelled"]
    assert await lua.where("d") == ["cancelled"]
    assert await lua.field("ready", "d") is None


async def test_cancel_of_an_active_job_flags_it_for_its_worker(lua: Lua) -> None:
    await lua.lease("a")
    assert await cancel(lua, "a") == 2
    assert await lua.where("a") == ["active"]
    assert await lua.field("cancel", "a") == "not needed"
    assert ("a", "cancel-requested") in await lua.events()


async def test_cancel_of_a_missing_or_finished_job_changes_nothing(lua: Lua) -> None:
    token = await lua.lease("done")
    await lua.complete("done", token)
    before = await lua.snapshot()
    assert await cancel(lua, "missing") == 0
    assert await cancel(lua, "done") == -1
    assert await lua.snapshot() == before


async def test_requeue_gives_dead_and_cancelled_jobs_fresh_attempts(lua: Lua) -> None:
    token = await lua.lease("dead")
    await fail(lua, "dead", token, "dead")
    await lua.add("cancelled")
    await cancel(lua, "cancelled")
    await lua.add("waiting")
    assert await lua("requeue", MAXLEN, "", "dead", "cancelled", "waiting") == [1, 1, 0]
    assert await lua.where("dead") == ["waiting"]
    assert await lua.where("cancelled") == ["waiting"]
    assert await lua.field("attempts", "dead") is None
    assert await lua.field("finished", "dead") is None
    assert len(json.loads(await lua.field("history", "dead") or "")) == 1  # history stays


async def test_requeue_with_a_new_spec_replaces_the_data(lua: Lua) -> None:
    token = await lua.lease("a")
    await fail(lua, "a", token, "dead")
    new_spec = json.dumps({"name": "noop", "data": {"fixed": True}})
    assert await lua("requeue", MAXLEN, new_spec, "a") == [1]
    assert await lua.field("spec", "a") == new_spec


async def test_remove_deletes_every_field_but_refuses_active_jobs(lua: Lua) -> None:
    await lua.add("gone", delay_ms=60_000)
    await lua.lease("busy")
    assert await lua("remove", MAXLEN, "gone", "busy", "missing") == [1, -1, 0]
    assert await lua.where("gone") == []
    for field in ("spec", "state", "priority", "ready"):
        assert await lua.field(field, "gone") is None
    assert await lua.where("busy") == ["active"]


async def test_set_paused_reports_whether_anything_changed(lua: Lua) -> None:
    assert await lua("set_paused", MAXLEN, "0") == 0
    assert await lua("set_paused", MAXLEN, "1") == 1
    assert await lua("set_paused", MAXLEN, "1") == 0
    assert await lua.r.hget(lua.keys.meta, "paused") == "1"
    assert await lua("set_paused", MAXLEN, "0") == 1
    assert await lua.r.hget(lua.keys.meta, "paused") is None
    assert [event for _, event in await lua.events()] == ["paused", "resumed"]


async def test_progress_writes_progress_and_keeps_the_last_log_lines(lua: Lua) -> None:
    token = await lua.lease("a")
    assert await lua("progress", MAXLEN, "a", token, '{"done":3}', "", 2) == 1
    for line in ["one", "two", "three"]:
        assert await lua("progress", MAXLEN, "a", token, "", line, 2) == 1
    assert await lua.field("progress", "a") == '{"done":3}'
    assert json.loads(await lua.field("logs", "a") or "") == ["two", "three"]


async def test_progress_with_a_stale_token_writes_nothing(lua: Lua) -> None:
    token = await lua.lease("a")
    await lua("release", MAXLEN, "a", token)
    await lua.fetch()
    before = await lua.snapshot()
    assert await lua("progress", MAXLEN, "a", token, "50", "late line", 10) == 0
    assert await lua.snapshot() == before


async def test_change_priority_moves_a_waiting_job(lua: Lua) -> None:
    await lua.add("a")
    await lua.add("b")
    assert await lua("change_priority", MAXLEN, "b", 7) == 1
    assert await lua.members("waiting") == ["b", "a"]
    assert await lua.field("priority", "b") == "7"


async def test_change_priority_of_a_missing_or_finished_job_changes_nothing(lua: Lua) -> None:
    token = await lua.lease("done")
    await fail(lua, "done", token, "dead")
    before = await lua.snapshot()
    assert await lua("change_priority", MAXLEN, "missing", 3) == 0
    assert await lua("change_priority", MAXLEN, "done", 3) == -1
    assert await lua.snapshot() == before


async def test_every_state_change_keeps_the_job_in_exactly_one_state_set(lua: Lua) -> None:
    """The invariant the whole engine rests on, walked through a full life cycle."""
    token = await lua.lease("a")
    await fail(lua, "a", token, "retry", delay=60_000)
    assert await lua.where("a") == ["delayed"]
    await lua("promote", MAXLEN, "a")
    token = str((await lua.fetch())[3])
    await expire(lua, "a")
    await recover(lua, max_stalls=5)
    assert await lua.where("a") == ["waiting"]
    token = str((await lua.fetch())[3])
    await fail(lua, "a", token, "dead")
    await lua("requeue", MAXLEN, "", "a")
    token = str((await lua.fetch())[3])
    await lua.complete("a", token)
    assert await lua.where("a") == ["completed"]
    assert await lua.state("a") == "completed"
