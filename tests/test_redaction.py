"""Redaction rules shared by logs and the operations API."""

from __future__ import annotations

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
