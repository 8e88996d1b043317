"""The flow-control parts of the scripts: each return code and the key state it leaves."""

from __future__ import annotations

import json

from tests.limiter.conftest import FlowLua, fetched, token_of
from tests.scripts.conftest import MAXLEN


async def redis_ms(flow: FlowLua) -> int:
    seconds, micros = await flow.r.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def test_add_puts_a_grouped_job_in_its_group_line_not_in_waiting(flow: FlowLua) -> None:
    assert await flow.add_job("a", "tenant:acme") == 1
    assert await flow.members("waiting") == []
    assert await flow.state("a") == "waiting"
    assert await flow.waiting_in("tenant:acme") == ["a"]
    assert await flow.lanes() == ["tenant:acme"]
    member = await flow.r.hget(flow.fc("job"), "a")
    assert member.startswith("tenant:acme\0") and member.endswith("\0a")
    assert await flow.r.zscore(flow.fc("jobs"), member) == 0


async def test_a_plain_job_touches_no_flow_key(flow: FlowLua) -> None:
    await flow.add_job("p")
    reply = await flow.fetch(1)
    assert fetched(reply) == ["p"]
    for name in ("config", "lanes", "jobs", "inflight", "log", "expiry", "job"):
        assert await flow.r.exists(flow.fc(name)) == 0, name


async def test_groups_are_served_round_robin(flow: FlowLua) -> None:
    for i in range(5):
        await flow.add_job(f"big{i}", "big")
    await flow.add_job("small0", "small")
    await flow.add_job("small1", "small")
    reply = await flow.fetch(4)
    assert fetched(reply) == ["big0", "small0", "big1", "small1"]
    assert await flow.lanes() == ["big"]  # small has no more jobs: it left the rotation
    assert await flow.inflight() == {}  # slots are only counted under a concurrency limit


async def test_ungrouped_jobs_get_one_share_like_a_group(flow: FlowLua) -> None:
    for i in range(4):
        await flow.add_job(f"g{i}", "g")
        await flow.add_job(f"p{i}")
    reply = await flow.fetch(4)
    assert sorted(fetched(reply)) == ["g0", "g1", "p0", "p1"]


async def test_priority_and_fifo_hold_within_a_group(flow: FlowLua) -> None:
    await flow.add_job("low", "g", priority=-5)
    await flow.add_job("a", "g")
    await flow.add_job("high", "g", priority=5)
    await flow.add_job("b", "g")
    assert fetched(await flow.fetch(4)) == ["high", "a", "b", "low"]


async def test_group_concurrency_parks_a_full_group_until_a_job_completes(flow: FlowLua) -> None:
    assert await flow.set_limits(group_conc="1") == 1
    await flow.add_job("a", "g")
    await flow.add_job("b", "g")
    first = await flow.fetch(5)
    assert fetched(first) == ["a"]
    assert fetched(await flow.fetch(5)) == []
    assert await flow.full() == {"g"} and await flow.lanes() == []
    await flow.r.delete(flow.keys.marker)
    codes, more = await flow.complete("a", token_of(first, "a"), fetch=5)
    assert codes == [1] and fetched(more) == ["b"]
    assert await flow.full() == set()
    assert await flow.inflight() == {"g": "1"}


async def test_completing_a_job_of_a_full_group_wakes_a_worker(flow: FlowLua) -> None:
    await flow.set_limits(group_conc="1")
    await flow.add_job("a", "g")
    await flow.add_job("b", "g")
    first = await flow.fetch(5)
    await flow.fetch(5)
    await flow.r.delete(flow.keys.marker)
    await flow.complete("a", token_of(first, "a"))
    assert await flow.r.zcard(flow.keys.marker) == 1
    assert await flow.lanes() == ["g"]


async def test_group_rate_blocks_a_group_until_its_window_reopens(flow: FlowLua) -> None:
    await flow.set_limits(group_rate="2:60000")
    for job_id in ("a", "b", "c"):
        await flow.add_job(job_id, "g")
    await flow.add_job("x", "other")
    reply = await flow.fetch(10)
    assert sorted(fetched(reply)) == ["a", "b", "x"]
    started = int(await flow.field("started", "a"))
    assert await flow.blocked() == {"g": started + 60_000}
    assert reply[1] == started + 60_000  # the worker sleeps until then, no busy loop
    assert await flow.waiting_in("g") == ["c"]
    assert fetched(await flow.fetch(10)) == []


async def test_a_blocked_group_rejoins_when_its_window_reopened(flow: FlowLua) -> None:
    await flow.set_limits(group_rate="1:50")
    await flow.add_job("a", "g")
    await flow.add_job("b", "g")
    assert fetched(await flow.fetch(10)) == ["a"]
    reopen = (await flow.blocked())["g"]
    while await redis_ms(flow) < reopen:
        await flow.r.execute_command("PING")
    assert fetched(await flow.fetch(10)) == ["b"]


async def test_queue_rate_limits_all_jobs_and_reports_when_it_reopens(flow: FlowLua) -> None:
    await flow.set_limits(rate="3:60000")
    for i in range(3):
        await flow.add_job(f"p{i}")
        await flow.add_job(f"g{i}", "g")
    reply = await flow.fetch(10)
    assert len(fetched(reply)) == 3
    first = min([int(await flow.field("started", job_id)) for job_id in fetched(reply)])
    assert reply[1] == first + 60_000
    assert fetched(await flow.fetch(10)) == []


async def test_queue_concurrency_counts_active_jobs_of_all_workers(flow: FlowLua) -> None:
    await flow.set_limits(conc="2")
    for i in range(4):
        await flow.add_job(f"p{i}")
    assert len(fetched(await flow.fetch(10, worker="w1"))) == 2
    assert fetched(await flow.fetch(10, worker="w2")) == []


async def test_a_stalled_job_gives_its_group_slot_back(flow: FlowLua) -> None:
    """A crashed worker never leaks a slot: the slot is the lease."""
    await flow.set_limits(group_conc="1")
    await flow.add_job("a", "g")
    await flow.add_job("b", "g")
    assert fetched(await flow.fetch(5, lease_ms=1)) == ["a"]
    assert await flow.full() == {"g"}
    while await redis_ms(flow) <= int(await flow.r.zscore(flow.keys.active, "a")):
        await flow.r.execute_command("PING")
    requeued, dead = await flow("recover_stalled", MAXLEN, 5, 100, -1, -1)
    assert requeued == ["a"] and dead == []
    assert await flow.inflight() == {}
    assert await flow.full() == set()
    assert await flow.waiting_in("g") == ["a", "b"]  # back at the front of its group


async def test_release_gives_the_slot_back(flow: FlowLua) -> None:
    await flow.set_limits(group_conc="1")
    await flow.add_job("a", "g")
    reply = await flow.fetch(5)
    assert await flow.inflight() == {"g": "1"}
    assert await flow("release", MAXLEN, "a", token_of(reply, "a")) == [1]
    assert await flow.inflight() == {}
    assert await flow.waiting_in("g") == ["a"]


async def test_fail_with_throttle_blocks_the_whole_group(flow: FlowLua) -> None:
    for job_id in ("a", "b"):
        await flow.add_job(job_id, "api")
    await flow.add_job("x", "other")
    reply = await flow.fetch(1)
    assert fetched(reply) == ["a"]
    assert await flow.fail_job("a", token_of(reply, "a"), delay_ms=30_000, throttle_ms=30_000)
    now = await redis_ms(flow)
    reopen = (await flow.blocked())["api"]
    assert now + 30_000 - 1000 <= reopen <= now + 30_000
    assert await flow.field("attempts", "a") is None  # not a failed attempt
    assert await flow.where("a") == ["delayed"]
    assert fetched(await flow.fetch(10)) == ["x"]


async def test_fail_without_throttle_leaves_the_group_alone(flow: FlowLua) -> None:
    await flow.add_job("a", "api")
    await flow.add_job("b", "api")
    reply = await flow.fetch(1)
    assert await flow.fail_job("a", token_of(reply, "a"), delay_ms=30_000) == 1
    assert await flow.blocked() == {}
    assert fetched(await flow.fetch(10)) == ["b"]


async def test_a_new_job_of_a_blocked_group_waits_with_it(flow: FlowLua) -> None:
    await flow.add_job("a", "api")
    reply = await flow.fetch(1)
    await flow.fail_job("a", token_of(reply, "a"), delay_ms=30_000, throttle_ms=30_000)
    await flow.add_job("b", "api")
    assert await flow.lanes() == []
    assert fetched(await flow.fetch(10)) == []


async def test_cancel_and_remove_take_a_grouped_job_out_of_its_line(flow: FlowLua) -> None:
    for job_id in ("a", "b", "c"):
        await flow.add_job(job_id, "g")
    assert await flow("cancel", MAXLEN, -1, -1, "a", "no") == 1
    assert await flow("remove", MAXLEN, "b") == [1]
    assert await flow.waiting_in("g") == ["c"]
    assert await flow.r.hget(flow.fc("job"), "b") is None
    assert fetched(await flow.fetch(10)) == ["c"]


async def test_change_priority_moves_a_grouped_job_within_its_line(flow: FlowLua) -> None:
    await flow.add_job("a", "g")
    await flow.add_job("b", "g")
    assert await flow("change_priority", MAXLEN, "b", 10) == 1
    assert await flow.waiting_in("g") == ["b", "a"]
    assert await flow.members("waiting") == []


async def test_a_delayed_grouped_job_joins_its_group_when_due(flow: FlowLua) -> None:
    await flow.add_job("d", "g", delay_ms=1)
    assert await flow.waiting_in("g") == []
    due = await flow.r.zscore(flow.keys.delayed, "d")
    while await redis_ms(flow) <= due:
        await flow.r.execute_command("PING")
    assert fetched(await flow.fetch(10)) == ["d"]


async def test_fetch_sends_a_job_past_its_start_deadline_to_dead(flow: FlowLua) -> None:
    await flow.add_job("late", deadline_ms=1)
    await flow.add_job("fine", deadline_ms=60_000)
    deadline = await flow.r.zscore(flow.fc("expiry"), "late")
    while await redis_ms(flow) <= deadline:
        await flow.r.execute_command("PING")
    assert fetched(await flow.fetch(10)) == ["fine"]
    assert await flow.where("late") == ["dead"]
    assert json.loads(await flow.field("error", "late"))["type"] == "Expired"
    assert ("late", "dead") in await flow.events()


async def test_the_maintenance_sweep_expires_waiting_jobs(flow: FlowLua) -> None:
    await flow.add_job("late", "g", deadline_ms=1)
    deadline = await flow.r.zscore(flow.fc("expiry"), "late")
    while await redis_ms(flow) <= deadline:
        await flow.r.execute_command("PING")
    assert await flow("recover_stalled", MAXLEN, 5, 100, -1, -1) == [[], []]
    assert await flow.where("late") == ["dead"]
    assert await flow.waiting_in("g") == []
    assert await flow.r.zcard(flow.fc("expiry")) == 0


async def test_a_job_that_started_in_time_never_expires(flow: FlowLua) -> None:
    await flow.add_job("a", deadline_ms=50)
    reply = await flow.fetch(1)
    await flow.fail_job("a", token_of(reply, "a"), delay_ms=1)
    deadline = await flow.r.zscore(flow.fc("expiry"), "a")
    while await redis_ms(flow) <= deadline:
        await flow.r.execute_command("PING")
    assert fetched(await flow.fetch(1)) == ["a"]  # its retry runs
    assert await flow.r.zcard(flow.fc("expiry")) == 0


async def test_set_limits_returns_how_many_are_set_and_frees_full_groups(flow: FlowLua) -> None:
    assert await flow.set_limits("5:1000", "3", "2:500", "1") == 4
    config = await flow.r.hgetall(flow.fc("config"))
    assert config == {"rate": "5:1000", "conc": "3", "krate": "2:500", "kconc": "1"}
    await flow.add_job("a", "g")
    await flow.add_job("b", "g")
    await flow.fetch(5)
    await flow.fetch(5)
    assert await flow.full() == {"g"}
    assert await flow.set_limits(group_conc="2") == 1
    assert await flow.r.hgetall(flow.fc("config")) == {"kconc": "2"}
    assert await flow.full() == set() and await flow.lanes() == ["g"]
    assert fetched(await flow.fetch(5)) == ["b"]
    assert await flow.set_limits() == 0
    assert await flow.r.exists(flow.fc("config")) == 0


async def test_set_key_limits_overrides_one_group(flow: FlowLua) -> None:
    await flow.set_limits(group_conc="1")
    assert await flow("set_key_limits", MAXLEN, "vip", "0:0:3") == 1
    assert await flow("set_key_limits", MAXLEN, "vip", "0:0:3") == 1  # an update
    assert await flow.r.hget(flow.fc("config"), "overrides") == "1"
    for i in range(4):
        await flow.add_job(f"v{i}", "vip")
        await flow.add_job(f"n{i}", "normal")
    assert sorted(fetched(await flow.fetch(10))) == ["n0", "v0", "v1", "v2"]
    assert await flow("set_key_limits", MAXLEN, "vip", "") == 0
    assert await flow("set_key_limits", MAXLEN, "vip", "") == -1
    assert await flow.r.hgetall(flow.fc("config")) == {"kconc": "1"}


async def test_lifting_every_group_concurrency_limit_drops_the_slot_counts(flow: FlowLua) -> None:
    await flow.set_limits(group_conc="1")
    await flow.add_job("a", "g")
    reply = await flow.fetch(1)
    assert await flow.inflight() == {"g": "1"}
    await flow.set_limits()
    assert await flow.inflight() == {}
    codes, _ = await flow.complete("a", token_of(reply, "a"))
    assert codes == [1] and await flow.inflight() == {}
