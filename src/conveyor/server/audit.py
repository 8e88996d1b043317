"""The audit trail: one entry per mutating API call, in a bounded Redis stream.

Bounded twice: at most ``maxlen`` entries (approximate trimming, so O(1) per write) and
nothing older than the retention period.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from conveyor.connection import Connection
from conveyor.keys import PREFIX

AUDIT_STREAM = f"{PREFIX}:server:audit"
_STREAM_ID = re.compile(r"\d{1,20}-\d{1,20}")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: str
    time: float
    key_id: str
    key_name: str
    role: str
    action: str
    target: dict[str, Any]
    params: Any
    client: str
    status: int
    outcome: str

    @classmethod
    def from_stream(cls, entry_id: str, fields: dict[str, str]) -> AuditEntry:
        return cls(
            id=entry_id, time=int(entry_id.split("-")[0]) / 1000,
            key_id=fields.get("key_id", ""), key_name=fields.get("key_name", ""),
            role=fields.get("role", ""), action=fields.get("action", ""),
            target=json.loads(fields.get("target", "{}")),
            params=json.loads(fields.get("params", "null")), client=fields.get("client", ""),
            status=int(fields.get("status", 0)), outcome=fields.get("outcome", ""),
        )  # fmt: skip


MAX_PARAMS = 4000


def _bounded(params: Any) -> str:
    """Parameters as JSON, replaced by a valid JSON preview when too long to keep whole."""
    text = json.dumps(params)
    if len(text) <= MAX_PARAMS:
        return text
    return json.dumps({"truncated": True, "preview": text[: MAX_PARAMS // 2]})


def is_stream_id(value: str) -> bool:
    return bool(_STREAM_ID.fullmatch(value))


class AuditTrail:
    def __init__(
        self, connection: Connection, *, maxlen: int, retention_days: float,
        stream: str = AUDIT_STREAM,
    ) -> None:  # fmt: skip
        self.client = connection.client
        self.stream = stream
        self.maxlen = maxlen
        self.retention_ms = int(retention_days * 86_400_000)

    async def record(
        self, *, key_id: str, key_name: str, role: str, action: str, target: dict[str, Any],
        params: Any, client: str, status: int, outcome: str,
    ) -> None:  # fmt: skip
        fields = {
            "key_id": key_id, "key_name": key_name, "role": role, "action": action,
            "target": json.dumps(target), "params": _bounded(params),
            "client": client, "status": status, "outcome": outcome,
        }  # fmt: skip
        cutoff = int(time.time() * 1000) - self.retention_ms
        pipe = self.client.pipeline(transaction=False)
        pipe.xadd(self.stream, fields, maxlen=self.maxlen, approximate=True)
        # Exact: removes only what expired since the last write, so it stays cheap.
        pipe.xtrim(self.stream, minid=str(cutoff), approximate=False)
        await pipe.execute()

    async def read(
        self, *, limit: int = 100, before: str | None = None, key_id: str | None = None,
        action: str | None = None, scan: int = 5000,
    ) -> tuple[list[AuditEntry], str | None]:  # fmt: skip
        """Newest first, filtered, scanning at most ``scan`` entries; returns the page and
        the cursor to pass as ``before`` for the next page (None at the end)."""
        found: list[AuditEntry] = []
        high = f"({before}" if before else "+"
        scanned = 0
        cursor: str | None = None
        while len(found) < limit and scanned < scan:
            batch = await self.client.xrevrange(self.stream, high, "-", count=min(500, scan))
            if not batch:
                return found, None
            for entry_id, fields in batch:
                scanned += 1
                cursor = entry_id
                entry = AuditEntry.from_stream(entry_id, fields)
                if (key_id is None or entry.key_id == key_id) and (
                    action is None or entry.action == action
                ):
                    found.append(entry)
                    if len(found) == limit:
                        break
            high = f"({cursor}"
        return found, cursor
