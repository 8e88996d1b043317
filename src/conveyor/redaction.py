"""Redaction rules shared by the logs and the operations API.

A value is hidden when its key looks secret (``password``, ``api_key``, ``authorization``…),
and secrets embedded in free text (credentials in URLs, bearer tokens, ``key=value`` pairs
with a secret-looking key) are masked, so an error message cannot leak them either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "[REDACTED]"
MAX_DEPTH = 32

#: Key fragments that mark a value as secret (matched case-insensitively, ignoring - and _).
SECRET_KEY_PARTS = (
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "authorization",
    "cookie",
    "session",
    "credential",
    "signature",
    "creditcard",
    "cardnumber",
    "cvv",
    "ssn",
)

# A cheap first look: text without any of these cannot hold a secret the rules below mask.
_SUSPECT = re.compile(r"(?i)://|bearer|basic|passw|secret|token|api[_-]?key|access[_-]?key")
# Every run is bounded and a scheme can only start where a scheme-like run starts: free text is
# attacker-controlled (job data, error messages), so no pattern may backtrack quadratically.
_URL_CREDENTIALS = re.compile(
    r"(?<![a-z0-9+.-])(?P<scheme>[a-z][a-z0-9+.-]{0,31}://)"
    r"(?P<user>[^:/@\s]{0,256}):[^@/\s]{1,512}@"
)
# A credential has a digit, a base64 symbol or an inner capital: plain words stay as they are.
_BEARER = re.compile(
    r"\b((?i:bearer|basic))\s+(?=[A-Za-z0-9._~+/-]*(?:[0-9+/=]|[a-z][A-Z]))"
    r"[A-Za-z0-9._~+/=-]{8,}"
)
_PAIR = re.compile(
    r"(?i)(?<![a-z0-9_-])"
    r"(?P<key>[a-z0-9_-]{0,64}(?:password|passwd|secret|token|api[_-]?key|access[_-]?key)"
    r"[a-z0-9_-]{0,64})"
    r"(?P<sep>[ \t]{0,8}[=:][ \t]{0,8})"
    r"(?P<value>\"[^\"]{0,4096}\"|'[^']{0,4096}'|[^\s,;&]+)"
)


class Redactor:
    """Applies the rules; ``extra_keys`` adds key fragments, ``allow`` exempts exact keys."""

    def __init__(self, extra_keys: Iterable[str] = (), allow: Iterable[str] = ()) -> None:
        self.parts = tuple(SECRET_KEY_PARTS) + tuple(_normal(k) for k in extra_keys)
        self.allow = frozenset(_normal(k) for k in allow)
        self._verdicts: dict[str, bool] = {}  # log records reuse a handful of keys

    def is_secret_key(self, key: str) -> bool:
        verdict = self._verdicts.get(key)
        if verdict is None:
            name = _normal(key)
            verdict = name not in self.allow and any(part in name for part in self.parts)
            if len(self._verdicts) < 10_000:
                self._verdicts[key] = verdict
        return verdict

    def text(self, value: str) -> str:
        """Mask secrets embedded in free text."""
        if not _SUSPECT.search(value):
            return value
        value = _URL_CREDENTIALS.sub(r"\g<scheme>\g<user>:" + MASK + "@", value)
        value = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", value)
        return _PAIR.sub(lambda m: f"{m.group('key')}{m.group('sep')}{MASK}", value)

    def value(self, value: Any, depth: int = 0) -> Any:
        """A copy of ``value`` with secret keys masked and strings cleaned, at any depth."""
        if value is None or isinstance(value, int | float):
            return value
        if isinstance(value, str):
            return self.text(value)
        if depth >= MAX_DEPTH:
            return MASK  # deeper than any sane payload: refuse rather than recurse
        if isinstance(value, Mapping):
            return self.mapping(value, depth)
        if isinstance(value, list | tuple):
            return [self.value(item, depth + 1) for item in value]
        return value

    def mapping(self, values: Mapping[Any, Any], depth: int = 0) -> dict[Any, Any]:
        return {
            key: MASK
            if isinstance(key, str) and self.is_secret_key(key)
            else self.value(item, depth + 1)
            for key, item in values.items()
        }


def _normal(key: str) -> str:
    return key.lower().replace("-", "").replace("_", "")


#: The rules used by default in logs and by the operations server.
DEFAULT = Redactor()


def redact(value: Any) -> Any:
    """Redact ``value`` (a mapping, list or string) with the default rules."""
    return DEFAULT.value(value)


def redact_text(value: str) -> str:
    return DEFAULT.text(value)
