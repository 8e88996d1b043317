"""Pure rules of the server: strict JSON, card-number masking, health thresholds."""

from __future__ import annotations

import pytest

from conveyor.server.body import MAX_DEPTH, parse_json
from conveyor.server.errors import ApiError
from conveyor.server.health import QueueSignals, judge
from conveyor.server.redaction import MASK, Redactor
from conveyor.server.settings import HealthThresholds


def test_depth_counts_only_outside_strings() -> None:
    assert parse_json(b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}') == {"a": "[" * 42}
    ok = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert parse_json(ok) is not None
    with pytest.raises(ApiError) as err:
        parse_json(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    assert err.value.code == "invalid_json"
    assert parse_json(b'{"big": 9223372036854775807}') == {"big": 2**63 - 1}
    with pytest.raises(ApiError):
        parse_json(b'{"big": 9223372036854775808}')


def test_card_numbers_masked_only_when_luhn_valid() -> None:
    redactor = Redactor(["iban"])
    assert redactor.redact("pay 4111-1111-1111-1111 now") == f"pay {MASK} now"
    assert redactor.redact("order 4111111111111112") == "order 4111111111111112"
    assert redactor.redact({"IBAN": "DE00", "user_token": "x", "n": 5}) == {
        "IBAN": MASK, "user_token": MASK, "n": 5,
    }  # fmt: skip
    assert Redactor([], cards=False).redact("4111111111111111") == "4111111111111111"


def signals(**changes: object) -> QueueSignals:
    base: dict[str, object] = {
        "counts": {"waiting": 0, "delayed": 0, "active": 0, "completed": 0, "dead": 0,
                   "cancelled": 0},
        "paused": False, "workers": 1, "completed_per_minute": 0.0, "failed_per_minute": 0.0,
        "dead_per_minute": 0.0, "failure_rate": None, "samples": 0,
        "seconds_since_fetch": None, "oldest_waiting_age": None,
    }  # fmt: skip
    base.update(changes)
    return QueueSignals(**base)  # type: ignore[arg-type]


def test_failure_rate_needs_enough_samples() -> None:
    t = HealthThresholds()
    assert judge(signals(failure_rate=0.9, samples=5), t).status == "healthy"
    assert judge(signals(failure_rate=0.3, samples=50), t).status == "degraded"
    verdict = judge(signals(failure_rate=0.9, samples=50), t)
    assert verdict.status == "unhealthy" and "failure rate 90%" in verdict.reasons


def test_stalled_queue_is_degraded_only_after_the_grace() -> None:
    t = HealthThresholds(idle_with_work_degraded=60, oldest_waiting_degraded=None)
    counts = {**signals().counts, "waiting": 3}
    fresh = signals(counts=counts, oldest_waiting_age=5.0, seconds_since_fetch=None)
    assert judge(fresh, t).status == "healthy"
    stuck = signals(counts=counts, oldest_waiting_age=120.0, seconds_since_fetch=300.0)
    assert judge(stuck, t).status == "degraded"
    busy = signals(counts=counts, oldest_waiting_age=120.0, seconds_since_fetch=1.0)
    assert judge(busy, t).status == "healthy"


def test_unhealthy_wins_and_checks_can_be_switched_off() -> None:
    counts = {**signals().counts, "waiting": 500, "dead": 50}
    verdict = judge(signals(counts=counts, workers=0), HealthThresholds())
    assert verdict.status == "unhealthy" and len(verdict.reasons) == 3
    quiet = HealthThresholds(
        waiting_degraded=None, waiting_unhealthy=None, dead_degraded=None, dead_unhealthy=None,
        no_worker_unhealthy=False,
    )  # fmt: skip
    assert judge(signals(counts=counts, workers=0), quiet).status == "healthy"
