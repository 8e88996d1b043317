"""Backoff strategies and retry decisions (pure functions: no Redis needed)."""

from __future__ import annotations

import random

import pytest

from conveyor import Backoff, ErrorRule, InvalidJobOptions, RetryPolicy, UnrecoverableError


def test_fixed_and_exponential_delays() -> None:
    error = RuntimeError()
    assert [Backoff.fixed(3).seconds(n, error) for n in (1, 2, 5)] == [3, 3, 3]
    exponential = Backoff.exponential(1, max_delay=5)
    assert [exponential.seconds(n, error) for n in (1, 2, 3, 4, 10)] == [1, 2, 4, 5, 5]


def test_jitter_stays_within_its_fraction() -> None:
    backoff = Backoff.fixed(10, jitter=0.5)
    rng = random.Random(7)
    delays = [backoff.seconds(1, RuntimeError(), rng=rng) for _ in range(200)]
    assert all(5 <= d <= 10 for d in delays)
    assert max(delays) - min(delays) > 2  # it does spread


def test_custom_backoff_function_is_looked_up_by_name() -> None:
    policy = RetryPolicy(backoffs={"linear": lambda attempts, error: attempts * 1.5})
    decision = policy.decide(RuntimeError(), 2, 5, Backoff.custom("linear"))
    assert decision.retry and decision.delay == 3.0
    missing = RetryPolicy().decide  # no function registered: a clear, unrecoverable error
    with pytest.raises(UnrecoverableError, match="linear"):
        missing(RuntimeError(), 1, 5, Backoff.custom("linear"))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "fixed", "jitter": 1.5}, "backoff.jitter"),
        ({"kind": "fixed", "jitter": -0.1}, "backoff.jitter"),
        ({"kind": "fixed", "delay": float("nan")}, "backoff.delay"),
        ({"kind": "exponential", "delay": -1}, "backoff.delay"),
        ({"kind": "custom"}, "backoff.name"),
        ({"kind": "linear"}, "backoff.kind"),
    ],
)
def test_bad_backoff_is_a_typed_error(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidJobOptions) as caught:
        Backoff(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_policy_matches_along_the_exception_hierarchy() -> None:
    policy = RetryPolicy(
        never=(ValueError,),
        rules={OSError: ErrorRule(backoff=Backoff.fixed(9), max_attempts=10)},
    )
    base = Backoff.fixed(1)
    assert not policy.decide(UnicodeError("x"), 1, 5, base).retry  # a ValueError subclass
    network = policy.decide(ConnectionResetError(), 6, 5, base)  # OSError rule: 10 attempts
    assert network.retry and network.delay == 9
    assert not policy.decide(ConnectionResetError(), 10, 5, base).retry
    assert policy.decide(KeyError(), 4, 5, base).retry
    exhausted = policy.decide(KeyError(), 5, 5, base)
    assert not exhausted.retry and "exhausted" in exhausted.reason
