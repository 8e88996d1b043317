"""add, fetch, complete, fail, extend, release: each return code and the key state it leaves."""

from __future__ import annotations

import json
import time

from tests.scripts.conftest import MAXLEN, Lua

NO_TRIM = -1


def attempt(outcome: str = "failed") -> str:
    return json.dumps({"outcome": outcome, "worker": "w1", "error": {"type": "E"}})


async def fail(lua: Lua, job_id: str, token: str, outcome: str, *, delay: int = 0, count: int = 1):  # type: ignore[no-untyped-def]
    return await lua(
        "fail", MAXLEN, NO_TRIM, NO_TRIM, job_id, token, json.dumps({"type": "E"}),
        attempt(), outcome, delay, count, "because",
    )  # fmt: skip


async def test_add_puts_a_new_job_in_waiting(lua: Lua) -> None:
    assert await lua.add("a") == 1
    assert await lua.where("a") == ["waiting"]
    assert await lua.state("a") == "waiting"
    assert await lua.events() == [("a", "waiting")]
    assert await lua.r.zcard(lua.keys.marker) == 1


async def test_add_with_delay_puts_the_job_in_delayed_at_its_due_time(lua: Lua) -> None:
    before = int(time.time() * 1000)
    assert await lua.add("d", delay_ms=60_000) == 1
    assert await lua.where("d") == ["delayed"]
    due = await lua.r.zscore(lua.keys.delayed, "d")
    assert before + 60_000 - 50 <= due <= before + 60_000 + 1000
    assert await lua.field("ready", "d") == str(int(due))


async def test_add_of_an_existing_id_returns_0_and_changes_nothing(lua: Lua) -> None:
    await lua.add("a", priority=5)
    before = await lua.snapshot()
    assert await lua.add("a", priority=-5, delay_ms=1000) == 0
    after = await lua.snapshot()
    before.pop(lua.keys.marker, None), after.pop(lua.keys.marker, None)
    assert after == before


async def test_add_in_bulk_returns_one_code_per_job(lua: Lua) -> None:
    spec = json.dumps({"name": "noop"})
    codes = await lua("add", MAXLEN, "x", spec, 0, 0, "y", spec, 0, 0, "x", spec, 0, 0)
    assert codes == [1, 1, 0]
    assert sorted(await lua.members("waiting")) == ["x", "y"]


async def test_add_in_bulk_mixes_plain_delayed_and_existing_jobs_in_order(lua: Lua) -> None:
    spec = json.dumps({"name": "noop"})
    await lua.add("old")
    args = ["p1", spec, 0, 0, "d1", spec, 0, 60_000, "old", spec, 9, 0, "hi", spec, 5, 0]
    args += ["p2", spec, 0, 0]
    assert await lua("add", MAXLEN, *args) == [1, 1, 0, 1, 1]
    assert await lua.members("delayed") == ["d1"]
    assert await lua.state("d1") == "delayed"
    reply = await lua.fetch(10)
    assert reply[2::5] == ["hi", "old", "p1", "p2"]
    # The existing job is untouched (not the 9 of the second add); priority 0 is not stored.
    assert await lua.field("priority", "old") is None
    assert await lua.field("priority", "hi") == "5"


async def test_add_of_more_jobs_than_one_chunk_keeps_fifo_order(lua: Lua) -> None:
    spec = json.dumps({"name": "noop"})
    ids = [f"j{i}" for i in range(1_201)]
    args = [value for job_id in ids for value in (job_id, spec, 0, 0)]
    assert await lua("add", MAXLEN, *args) == [1] * len(ids)
    reply = await lua.fetch(2_000)
    assert reply[2::5] == ids
    assert await lua.r.xlen(lua.keys.events) >= 1_000  # one event per job (stream capped)


async def test_fetch_leases_by_priority_then_fifo(lua: Lua) -> None:
    for job_id, priority in [("low", -1), ("a", 0), ("high", 10), ("b", 0)]:
        await lua.add(job_id, priority=priority)
    reply = await lua.fetch(4, worker="w7", lease_ms=30_000)
    assert reply[0] == 0 and reply[1] == -1
    ids = reply[2::5]
    assert ids == ["high", "a", "b", "low"]
    assert reply[3:7] == [1, "0", "0", json.dumps({"name": "noop", "data": None, "options": {}})]
    assert await lua.members("waiting") == []
    for job_id in ids:
        assert await lua.state(job_id) == "active"
        assert await lua.field("worker", job_id) == "w7"
    expiry = await lua.r.zscore(lua.keys.active, "a")
    assert abs(expiry - (time.time() * 1000 + 30_000)) < 2000


async def test_fetch_returns_no_jobs_and_the_paused_flag_on_a_paused_queue(lua: Lua) -> None:
    await lua.add("a")
    assert await lua("set_paused", MAXLEN, "1") == 1
    reply = await lua.fetch(10)
    assert reply[:2] == [1, -1] and len(reply) == 2
    assert await lua.where("a") == ["waiting"]


async def test_fetch_promotes_due_delayed_jobs_and_reports_the_next_due_time(lua: Lua) -> None:
    await lua.add("soon", delay_ms=1)
    await lua.add("later", delay_ms=60_000)
    due_later = await lua.r.zscore(lua.keys.delayed, "later")
    await _until_past(lua, await lua.r.zscore(lua.keys.delayed, "soon"))
    reply = await lua.fetch(10)
    assert reply[2::5] == ["soon"]
    assert reply[1] == int(due_later)
    assert await lua.field("ready", "soon") is None


async def test_each_activation_increments_the_fencing_token(lua: Lua) -> None:
    token = await lua.lease("a", lease_ms=60_000)
    assert await lua("release", MAXLEN, "a", token) == [1]
    again = await lua.fetch()
    assert int(again[3]) == int(token) + 1


async def test_complete_with_the_current_token_completes_and_stores_the_result(lua: Lua) -> None:
    token = await lua.lease("a")
    codes, fetched = await lua.complete("a", token, '{"ok":1}')
    assert codes == [1] and fetched[2:] == []
    assert await lua.where("a") == ["completed"]
    assert await lua.field("result", "a") == '{"ok":1}'
    assert await lua.field("finished", "a") is not None
    assert ("a", "completed") in await lua.events()


async def test_complete_with_a_stale_token_returns_0_and_writes_nothing(lua: Lua) -> None:
    token = await lua.lease("a")
    await lua("release", MAXLEN, "a", token)
    await lua.fetch()  # another worker holds it now, with a new token
    before = await lua.snapshot()
    codes, _ = await lua.complete("a", token)
    assert codes == [0]
    assert await lua.snapshot() == before


async def test_complete_of_a_batch_ends_each_job_once_and_skips_stale_ones(lua: Lua) -> None:
    spec = json.dumps({"name": "noop"})
    ids = [f"j{i}" for i in range(700)]
    await lua("add", MAXLEN, *[v for job_id in ids for v in (job_id, spec, 0, 0)])
    reply = await lua.fetch(700)
    tokens = dict(zip(reply[2::5], reply[3::5], strict=True))
    acks = [(job_id, tokens[job_id], '"r"') for job_id in ids]
    acks.insert(350, ("j0", tokens["j0"], '"again"'))  # the same job twice in one batch
    acks.append(("j1", int(tokens["j1"]) + 1, '"stale"'))  # a token it never had
    args = [v for ack in acks for v in ack]
    codes, _ = await lua("complete", MAXLEN, -1, -1, "w1", 60_000, 0, len(acks), *args)
    assert codes == [1] * 350 + [0] + [1] * 350 + [0]
    assert len(await lua.members("completed")) == 700
    assert await lua.field("result", "j0") == '"r"'
    assert await lua.field("result", "j1") == '"r"'
    assert await lua.r.zcard(lua.keys.active) == 0


async def test_complete_fetches_the_next_jobs_in_the_same_call(lua: Lua) -> None:
    token = await lua.lease("a")
    await lua.add("b")
    await lua.add("c")
    codes, fetched = await lua.complete("a", token, fetch=5)
    assert codes == [1]
    assert fetched[2::5] == ["b", "c"]


async def test_complete_trims_completed_jobs_beyond_the_kept_count(lua: Lua) -> None:
    for job_id in ["a", "b", "c"]:
        token = await lua.lease(job_id)
        await lua.complete(job_id, token, keep=2)
    assert await lua.members("completed") == ["b", "c"]
    for field in ("spec", "state", "result", "token"):
        assert await lua.field(field, "a") is None, field


async def test_complete_trims_completed_jobs_older_than_the_kept_age(lua: Lua) -> None:
    token = await lua.lease("old")
    await lua.complete("old", token)
    await lua.r.zadd(lua.keys.completed, {"old": 1})  # finished long ago
    token = await lua.lease("new")
    await lua.complete("new", token, keep_age_ms=60_000)
    assert await lua.members("completed") == ["new"]
    assert await lua.state("old") is None


async def test_fail_retry_with_delay_moves_the_job_to_delayed_and_counts_it(lua: Lua) -> None:
    token = await lua.lease("a")
    assert await fail(lua, "a", token, "retry", delay=5000) == 1
    assert await lua.where("a") == ["delayed"]
    assert await lua.field("attempts", "a") == "1"
    assert json.loads(await lua.field("error", "a") or "") == {"type": "E"}
    assert len(json.loads(await lua.field("history", "a") or "")) == 1
    due = await lua.r.zscore(lua.keys.delayed, "a")
    assert abs(due - (time.time() * 1000 + 5000)) < 2000
    assert ("a", "retrying") in await lua.events()


async def test_fail_retry_without_delay_moves_the_job_to_waiting(lua: Lua) -> None:
    token = await lua.lease("a")
    assert await fail(lua, "a", token, "retry") == 1
    assert await lua.where("a") == ["waiting"]


async def test_fail_without_counting_leaves_the_attempts_alone(lua: Lua) -> None:
    token = await lua.lease("a")
    assert await fail(lua, "a", token, "retry", delay=100, count=0) == 1
    assert await lua.field("attempts", "a") is None


async def test_fail_dead_buries_the_job_in_dead(lua: Lua) -> None:
    token = await lua.lease("a")
    assert await fail(lua, "a", token, "dead") == 1
    assert await lua.where("a") == ["dead"]
    assert await lua.state("a") == "dead"
    assert await lua.field("finished", "a") is not None
    assert ("a", "dead") in await lua.events()


async def test_fail_cancelled_moves_the_job_to_cancelled(lua: Lua) -> None:
    token = await lua.lease("a")
    assert await fail(lua, "a", token, "cancelled", count=0) == 1
    assert await lua.where("a") == ["cancelled"]


async def test_fail_with_a_stale_token_returns_0_and_writes_nothing(lua: Lua) -> None:
    token = await lua.lease("a")
    await lua("release", MAXLEN, "a", token)
    await lua.fetch()
    before = await lua.snapshot()
    assert await fail(lua, "a", token, "dead") == 0
    assert await lua.snapshot() == before


async def test_history_keeps_the_last_50_attempts(lua: Lua) -> None:
    await lua.add("a")
    for _ in range(55):
        reply = await lua.fetch()
        await fail(lua, "a", str(reply[3]), "retry")
    assert len(json.loads(await lua.field("history", "a") or "")) == 50


async def test_extend_renews_reports_cancellation_and_rejects_stale_tokens(lua: Lua) -> None:
    token = await lua.lease("a", lease_ms=1000)
    await lua.add("b")
    other = (await lua.fetch())[3]
    await lua("cancel", MAXLEN, NO_TRIM, NO_TRIM, "b", "stop")
    assert await lua("extend", 60_000, "a", token, "b", other, "a", "999") == [1, 2, 0]
    expiry = await lua.r.zscore(lua.keys.active, "a")
    assert abs(expiry - (time.time() * 1000 + 60_000)) < 2000


async def test_extend_does_not_resurrect_a_job_that_left_active(lua: Lua) -> None:
    token = await lua.lease("a")
    await fail(lua, "a", token, "dead")
    assert await lua("extend", 60_000, "a", token) == [0]
    assert await lua.where("a") == ["dead"]


async def test_release_puts_the_job_at_the_front_of_waiting_without_an_attempt(lua: Lua) -> None:
    token = await lua.lease("x")
    await lua.add("queued-before-release")
    assert await lua("release", MAXLEN, "x", token, "x", token) == [1, 0]
    assert await lua.members("waiting") == ["x", "queued-before-release"]
    assert await lua.field("attempts", "x") is None
    assert ("x", "released") in await lua.events()


async def _until_past(lua: Lua, ms: float) -> None:
    """Wait until Redis's clock passes ``ms`` (the scripts use Redis time, not ours)."""
    while True:
        seconds, micros = await lua.r.time()
        if seconds * 1000 + micros // 1000 > ms:
            return
