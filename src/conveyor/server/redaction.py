"""Masking for API responses: the shared rules of :mod:`conveyor.redaction` (secret-looking
keys, credentials in text) plus the server's configured field names, and card numbers
(digit runs passing the Luhn check) inside any string."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from conveyor import redaction

MASK = redaction.MASK
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


def _luhn(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    return MASK if _luhn(re.sub(r"\D", "", match.group())) else match.group()


class Redactor(redaction.Redactor):
    """The shared rules, extended with ``sensitive`` key fragments and card numbers."""

    def __init__(self, sensitive: Iterable[str], *, cards: bool = True) -> None:
        super().__init__(extra_keys=[word for word in sensitive if word])
        self.cards = cards

    def text(self, value: str) -> str:
        value = super().text(value)
        return _CARD.sub(_mask_card, value) if self.cards else value

    def redact(self, value: Any) -> Any:
        """A copy of ``value`` with sensitive parts masked."""
        return self.value(value)
