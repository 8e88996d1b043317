"""Masking sensitive values in job payloads, results, errors and audit parameters.

A key is sensitive when its name contains one of the configured words (case-insensitive,
ignoring ``-``/``_``): ``password``, ``token``, ``api_key``… Card-number-like digit runs that
pass the Luhn check are masked inside any string as well.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

MASK = "***"
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


def _normalise(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def _luhn(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


class Redactor:
    """Masks values under sensitive keys, and card numbers in strings."""

    def __init__(self, sensitive: Iterable[str], *, cards: bool = True) -> None:
        self.words = tuple(_normalise(w) for w in sensitive if w)
        self.cards = cards

    def is_sensitive(self, key: str) -> bool:
        name = _normalise(key)
        return any(word in name for word in self.words)

    def _string(self, text: str) -> str:
        if not self.cards:
            return text

        def mask(match: re.Match[str]) -> str:
            digits = re.sub(r"\D", "", match.group())
            return MASK if _luhn(digits) else match.group()

        return _CARD.sub(mask, text)

    def redact(self, value: Any) -> Any:
        """A copy of ``value`` with sensitive parts masked; iterative-depth safe for
        the nesting the API accepts (stored payloads are at most 64 levels deep)."""
        if isinstance(value, dict):
            return {
                k: MASK if isinstance(k, str) and self.is_sensitive(k) else self.redact(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.redact(v) for v in value]
        if isinstance(value, str):
            return self._string(value)
        return value
