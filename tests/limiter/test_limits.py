"""Bad limits, groups and deadlines: typed errors naming the field, nothing written."""

from __future__ import annotations

import math
from typing import Any

import pytest

import conveyor
from conveyor import (
    GroupLimits,
    InvalidJobOptions,
    InvalidLimits,
    JobOptions,
    Limiter,
    Limits,
    Queue,
    Rate,
    RateLimited,
)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Rate(0, 1.0), "rate.limit"),
        (lambda: Rate(-3, 1.0), "rate.limit"),
        (lambda: Rate(2.5, 1.0), "rate.limit"),  # type: ignore[arg-type]
        (lambda: Rate(True, 1.0), "rate.limit"),
        (lambda: Rate(5, 0), "rate.period"),
        (lambda: Rate(5, -1.0), "rate.period"),
        (lambda: Rate(5, math.nan), "rate.period"),
        (lambda: Rate(5, math.inf), "rate.period"),
        (lambda: Rate(5, "1"), "rate.period"),  # type: ignore[arg-type]
        (lambda: Limits(concurrency=0), "limits.concurrency"),
        (lambda: Limits(concurrency=-1), "limits.concurrency"),
        (lambda: Limits(group_concurrency=0), "limits.group_concurrency"),
        (lambda: Limits(rate=5), "limits.rate"),  # type: ignore[arg-type]
        (lambda: Limits(group_rate=(5, 1.0)), "limits.group_rate"),  # type: ignore[arg-type]
        (lambda: GroupLimits(concurrency=0), "group_limits.concurrency"),
        (lambda: RateLimited(-1), "retry_after"),
        (lambda: RateLimited(math.nan), "retry_after"),
    ],
)
def test_bad_limits_are_typed_errors_naming_the_field(build: Any, field: str) -> None:
    with pytest.raises(InvalidLimits) as caught:
        build()
    assert caught.value.field == field
    assert isinstance(caught.value, conveyor.ValidationError)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        (lambda: JobOptions(group=""), "group"),
        (lambda: JobOptions(group='say "hi"'), "group"),
        (lambda: JobOptions(group="back\\slash"), "group"),
        (lambda: JobOptions(group="tab\there"), "group"),
        (lambda: JobOptions(group="caf\u00e9"), "group"),
        (lambda: JobOptions(group="x" * 201), "group"),
        (lambda: JobOptions(group=7), "group"),  # type: ignore[arg-type]
        (lambda: JobOptions(deadline=0), "deadline"),
        (lambda: JobOptions(deadline=-5), "deadline"),
        (lambda: JobOptions(deadline=math.inf), "deadline"),
    ],
)
def test_bad_group_or_deadline_options_name_the_field(options: Any, field: str) -> None:
    with pytest.raises(InvalidJobOptions) as caught:
        options()
    assert caught.value.field == field


async def test_a_deadline_within_the_delay_is_refused_and_nothing_written(queue: Queue) -> None:
    with pytest.raises(InvalidJobOptions) as caught:
        await queue.add("noop", None, JobOptions(delay=10, deadline=5))
    assert caught.value.field == "deadline" and "delay" in caught.value.message
    with pytest.raises(InvalidJobOptions):
        await queue.add_bulk([("noop", 1), ("noop", 2, JobOptions(delay=2, deadline=2))])
    assert sum((await queue.counts()).values()) == 0


async def test_limits_round_trip(queue: Queue) -> None:
    limiter = Limiter(queue)
    assert await limiter.get() == Limits()
    limits = Limits(rate=Rate(100, 1.0), concurrency=20, group_rate=Rate(5, 0.25),
                    group_concurrency=2)  # fmt: skip
    await limiter.set(limits)
    assert await limiter.get() == limits
    await limiter.set(Limits())
    assert await limiter.get() == Limits()


async def test_group_limits_round_trip(queue: Queue) -> None:
    limiter = Limiter(queue)
    assert await limiter.group_limits("tenant:acme") is None
    await limiter.set_group("tenant:acme", GroupLimits(rate=Rate(3, 2.0), concurrency=4))
    assert await limiter.group_limits("tenant:acme") == GroupLimits(Rate(3, 2.0), 4)
    await limiter.set_group("tenant:acme", GroupLimits(concurrency=1))
    assert await limiter.group_limits("tenant:acme") == GroupLimits(None, 1)
    assert await limiter.clear_group("tenant:acme") is True
    assert await limiter.clear_group("tenant:acme") is False
    assert await limiter.group_limits("tenant:acme") is None


async def test_refused_limits_write_nothing(queue: Queue, conn: conveyor.Connection) -> None:
    limiter = Limiter(queue)
    await limiter.set(Limits(concurrency=3))
    before = await conn.client.hgetall(queue.keys.key("fc:config"))
    with pytest.raises(InvalidLimits) as caught:
        await limiter.set({"concurrency": 0})  # type: ignore[arg-type]
    assert caught.value.field == "limits"
    with pytest.raises(InvalidJobOptions) as bad_group:
        await limiter.set_group('a"b', GroupLimits(concurrency=1))
    assert bad_group.value.field == "group"
    with pytest.raises(InvalidLimits):
        await limiter.set_group("ok", GroupLimits(concurrency=0))
    assert await conn.client.hgetall(queue.keys.key("fc:config")) == before


def test_only_rate_limited_with_throttle_holds_a_group_back() -> None:
    from conveyor.errors import RetryLater
    from conveyor.worker import _throttle_ms

    assert _throttle_ms(RateLimited(1.5)) == 1500
    assert _throttle_ms(RateLimited(2, throttle_group=False)) == 0
    assert _throttle_ms(RetryLater(3)) == 0
    assert _throttle_ms(ValueError("boom")) == 0
    assert isinstance(RateLimited(1), RetryLater)  # handled like RetryLater: no attempt used
