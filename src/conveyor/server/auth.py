"""API keys: bearer tokens stored hashed in Redis, with a role and optional queue list.

A token reads ``cvk_<id>_<secret>``. Redis keeps only the SHA-256 of the secret (the
secret is 256 random bits, so a fast hash is enough), compared in constant time.
Roles are ordered: ``viewer`` reads (payloads redacted), ``operator`` also retries,
cancels, pauses and requeues, ``admin`` also manages keys and purges.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from conveyor.connection import Connection
from conveyor.errors import ValidationError
from conveyor.keys import PREFIX
from conveyor.validation import check_queue_name

KEYS_HASH = f"{PREFIX}:server:keys"
TOKEN_PREFIX = "cvk_"
_TOKEN = re.compile(r"cvk_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})")
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()
MAX_KEY_NAME = 100


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    def allows(self, needed: Role) -> bool:
        return _RANK[self] >= _RANK[needed]


_RANK = {role: rank for rank, role in enumerate(Role)}


class InvalidKey(ValidationError):
    """A key's name, role or queue list is unusable."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """What Redis holds about one key (never the secret)."""

    id: str
    name: str
    role: Role
    queues: tuple[str, ...] = ()
    created_at: float = field(default_factory=time.time)
    revoked_at: float | None = None
    secret_hash: str = ""

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        del data["secret_hash"]
        data["queues"] = list(self.queues)
        return data


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's id, name, role and queue restriction (empty = all)."""

    key_id: str
    name: str
    role: Role
    queues: frozenset[str] = frozenset()

    def can_see(self, queue: str) -> bool:
        return not self.queues or queue in self.queues

    @property
    def sees_payloads(self) -> bool:
        return self.role.allows(Role.OPERATOR)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _decode(raw: str) -> ApiKey:
    data = json.loads(raw)
    return ApiKey(
        id=data["id"], name=data["name"], role=Role(data["role"]),
        queues=tuple(data.get("queues", ())), created_at=data["created_at"],
        revoked_at=data.get("revoked_at"), secret_hash=data["secret_hash"],
    )  # fmt: skip


def check_key_input(
    name: object, role: object, queues: Iterable[object]
) -> tuple[str, Role, tuple[str, ...]]:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_KEY_NAME:
        raise InvalidKey("name", f"must be a non-empty string of at most {MAX_KEY_NAME} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidKey("name", "must not contain control characters")
    if role not in {r.value for r in Role}:
        raise InvalidKey("role", f"must be one of {', '.join(r.value for r in Role)}")
    checked = tuple(sorted({check_queue_name(q) for q in queues}))
    return name, Role(str(role)), checked


def parse_token(token: str) -> tuple[str, str] | None:
    """``(key id, secret)`` of a token in the ``cvk_<id>_<secret>`` form, else None."""
    match = _TOKEN.fullmatch(token)
    return (match[1], match[2]) if match else None


def verify(record: str | None, secret: str) -> Principal | None:
    """The principal of a stored key (``record``, None if there is none) whose secret this
    is and that is not revoked. The hash is compared even for an unknown key, in constant
    time, so a reply's timing says nothing about which keys exist."""
    key = _decode(record) if record else None
    expected = key.secret_hash if key is not None else _DUMMY_HASH
    valid = hmac.compare_digest(_hash(secret), expected)
    if key is None or not valid or not key.active:
        return None
    return Principal(key.id, key.name, key.role, frozenset(key.queues))


class KeyStore:
    """Create, find, list and revoke API keys in Redis."""

    def __init__(self, connection: Connection) -> None:
        self.client = connection.client

    async def create(
        self, name: str, role: Role | str, queues: Iterable[str] = ()
    ) -> tuple[ApiKey, str]:
        """A new key and its token; the token is shown once and never stored."""
        name, checked_role, checked_queues = check_key_input(name, role, queues)
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        key = ApiKey(key_id, name, checked_role, checked_queues, secret_hash=_hash(secret))
        record = asdict(key)
        record["queues"] = list(key.queues)
        await self.client.hset(KEYS_HASH, key_id, json.dumps(record))
        return key, f"{TOKEN_PREFIX}{key_id}_{secret}"

    async def get(self, key_id: str) -> ApiKey | None:
        raw = await self.client.hget(KEYS_HASH, key_id)
        return _decode(raw) if raw else None

    async def list(self) -> list[ApiKey]:
        raw: dict[str, str] = await self.client.hgetall(KEYS_HASH)
        return sorted((_decode(v) for v in raw.values()), key=lambda k: k.created_at)

    async def revoke(self, key_id: str) -> ApiKey | None:
        """Mark a key revoked (it stays listed); None when there is no such key."""
        key = await self.get(key_id)
        if key is None:
            return None
        if key.active:
            record = asdict(key)
            record["queues"] = list(key.queues)
            record["revoked_at"] = time.time()
            await self.client.hset(KEYS_HASH, key_id, json.dumps(record))
            key = _decode(json.dumps(record))
        return key

    async def authenticate(self, token: str) -> Principal | None:
        """The principal of a valid, unrevoked token; None for anything else."""
        parsed = parse_token(token)
        if parsed is None:
            return None
        key_id, secret = parsed
        return verify(await self.client.hget(KEYS_HASH, key_id), secret)
