"""Random sequences of transitions on grouped jobs keep the flow-control structures exact."""

from __future__ import annotations

import random
from typing import Any

from tests.limiter.conftest import FlowLua, fetched
from tests.scripts.conftest import MAXLEN

GROUPS = ["a", "b", "c", "d"]
GROUP_CONC, QUEUE_CONC = 2, 5


async def states_of(flow: FlowLua, jobs: dict[str, str]) -> dict[str, str]:
    if not jobs:
        return {}
    values = await flow.r.hmget(flow.keys.job_field("state"), list(jobs))
    return dict(zip(jobs, values, strict=True))


async def check(flow: FlowLua, jobs: dict[str, str]) -> None:
    """Every structure agrees with the jobs' states."""
    r = flow.r
    states = await states_of(flow, jobs)
    lined = await r.zrange(flow.fc("jobs"), 0, -1)
    in_line = {member.split("\0")[2]: member.split("\0")[0] for member in lined}
    plain_waiting = set(await flow.members("waiting"))
    for job_id, group in jobs.items():
        waiting = states[job_id] == "waiting"
        assert (in_line.get(job_id) == group) == (waiting and group != ""), job_id
        assert (job_id in plain_waiting) == (waiting and group == ""), job_id
    lanes = set(await flow.lanes())
    blocked = set(await flow.blocked())
    full = await flow.full()
    for group in set(in_line.values()):
        assert len([s for s in (lanes, blocked, full) if group in s]) == 1, group
    active = [job_id for job_id, state in states.items() if state == "active"]
    assert len(active) <= QUEUE_CONC
    running = {g: sum(1 for j in active if jobs[j] == g) for g in GROUPS}
    assert all(n <= GROUP_CONC for n in running.values()), running
    inflight = {g: int(n) for g, n in (await flow.inflight()).items()}
    assert inflight == {g: n for g, n in running.items() if n}, (inflight, running)


async def step(
    flow: FlowLua, rng: random.Random, jobs: dict[str, str], tokens: dict[str, str]
) -> None:
    action = rng.choice(["add", "add", "fetch", "complete", "retry", "release", "cancel", "bump"])
    waiting = [j for j, state in (await states_of(flow, jobs)).items() if state == "waiting"]
    if action == "add":
        job_id = f"j{len(jobs)}"
        jobs[job_id] = rng.choice([*GROUPS, ""])
        await flow.add_job(job_id, jobs[job_id], priority=rng.randint(-2, 2))
    elif action == "fetch":
        reply = await flow.fetch(rng.randint(1, 6), lease_ms=60_000)
        for i in range(2, len(reply), 5):
            tokens[reply[i]] = str(reply[i + 1])
    elif action in ("complete", "retry", "release") and tokens:
        job_id = rng.choice(sorted(tokens))
        token = tokens.pop(job_id)
        if action == "complete":
            await flow.complete(job_id, token)
        elif action == "retry":
            await flow.fail_job(job_id, token, throttle_ms=rng.choice([0, 0, 5]))
        else:
            await flow("release", MAXLEN, job_id, token)
    elif action == "cancel" and waiting:
        await flow("cancel", MAXLEN, -1, -1, rng.choice(waiting), "no")
    elif action == "bump" and waiting:
        await flow("change_priority", MAXLEN, rng.choice(waiting), rng.randint(-5, 5))


async def test_random_transitions_keep_every_structure_consistent(flow: FlowLua) -> None:
    await flow.set_limits(conc=str(QUEUE_CONC), group_rate="4:20", group_conc=str(GROUP_CONC))
    rng = random.Random(4)  # a seed whose run hits blocked and full groups
    jobs: dict[str, str] = {}
    tokens: dict[str, str] = {}
    for _ in range(300):
        await step(flow, rng, jobs, tokens)
        await check(flow, jobs)
    # and everything still drains: nothing is stuck in a line, a set or a slot
    for _ in range(2000):
        for job_id, token in list(tokens.items()):
            await flow.complete(job_id, token)
            del tokens[job_id]
        reply: Any = await flow.fetch(6)
        for i in range(2, len(reply), 5):
            tokens[reply[i]] = str(reply[i + 1])
        states = (await states_of(flow, jobs)).values()
        if not tokens and all(s in ("completed", "cancelled") for s in states):
            break
        await flow.r.execute_command("PING")
    await check(flow, jobs)
    assert set((await states_of(flow, jobs)).values()) <= {"completed", "cancelled"}
    assert fetched(await flow.fetch(6)) == []
