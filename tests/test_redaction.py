"""Redaction rules shared by logs and the operations API."""

from __future__ import annotations

import time

import pytest

from conveyor.redaction import MASK, Redactor, redact, redact_text


def test_secret_keys_are_masked_at_any_depth() -> None:
    value = {
        "user": "ann",
        "Password": "p1",
        "nested": {"api-key": "k", "items": [{"access_token": "t", "id": 3}]},
        "Authorization": "Bearer abc",
    }
    assert redact(value) == {
        "user": "ann",
        "Password": MASK,
        "nested": {"api-key": MASK, "items": [{"access_token": MASK, "id": 3}]},
        "Authorization": MASK,
    }
    assert value["Password"] == "p1"  # a copy, never the caller's object


def test_secrets_inside_text_are_masked() -> None:
    assert redact_text("redis://app:hunter2@db:6379/0") == f"redis://app:{MASK}@db:6379/0"
    assert redact_text("header Bearer eyJhbGciOiJIUzI1NiJ9.x") == f"header Bearer {MASK}"
    assert redact_text("password=hunter2, user=ann") == f"password={MASK}, user=ann"
    assert redact_text('client_secret: "s3 cr3t" ok') == f"client_secret: {MASK} ok"
    assert redact_text("nothing to hide") == "nothing to hide"


def test_rules_can_be_extended_and_relaxed() -> None:
    custom = Redactor(extra_keys=["iban"], allow=["session_id"])
    assert custom.mapping({"IBAN": "DE00", "session_id": "s1", "token": "t"}) == {
        "IBAN": MASK,
        "session_id": "s1",
        "token": MASK,
    }


def test_deep_values_stop_at_a_bound() -> None:
    deep: object = "leaf"
    for _ in range(100):
        deep = [deep]
    flattened = redact(deep)
    for _ in range(32):
        flattened = flattened[0]
    assert flattened == MASK


def test_ordinary_words_are_left_alone() -> None:
    for text in ("Basic configuration missing", "bearer of bad news", "tokenizer failed"):
        assert redact_text(text) == text
    assert redact_text("Basic dXNlcjpwYXNz") == f"Basic {MASK}"


HOSTILE = {
    "letters then a scheme": "a" * 200_000 + "://x",
    "many schemes": "a://" * 50_000,
    "a user and no @": "s://" + "u" * 100_000 + ":" + "p" * 100_000,
    "a dashed run before a keyword": "a-" * 100_000 + "token",
    "an unclosed quote": 'token="' + "a" * 200_000,
    "spaces before the separator": "password" + " " * 200_000 + "=x",
    "card-like digits": "1 " * 100_000,
}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_text_is_redacted_in_linear_time(text: str) -> None:
    """Job data and errors are attacker-controlled: a quadratic pattern would take hours here."""
    from conveyor.server.redaction import Redactor as ServerRedactor

    started = time.perf_counter()
    ServerRedactor([]).text(text)
    assert time.perf_counter() - started < 2.0


def test_bounded_patterns_still_mask_what_they_should() -> None:
    redactor = Redactor()
    assert "hunter2" not in redactor.text("x-api-key: hunter2")
    assert "s3cr3t" not in redactor.text("postgres://app:s3cr3t@db:5432/app")
    assert "abc123" not in redactor.text("retrying with password = abc123")
