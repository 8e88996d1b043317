"""What every request handler needs, built once per process from the settings.

Nothing here is state about jobs or keys: all of that is read from Redis on each request,
so any number of server processes can run side by side.
"""

from __future__ import annotations

from dataclasses import dataclass

from conveyor.connection import Connection
from conveyor.queue import Queue
from conveyor.server.audit import AuditTrail
from conveyor.server.auth import KeyStore
from conveyor.server.redaction import Redactor
from conveyor.server.settings import ServerSettings


@dataclass(slots=True)
class ServerContext:
    connection: Connection
    settings: ServerSettings
    keys: KeyStore
    audit: AuditTrail
    redactor: Redactor

    @classmethod
    def build(cls, connection: Connection, settings: ServerSettings) -> ServerContext:
        return cls(
            connection=connection,
            settings=settings,
            keys=KeyStore(connection),
            audit=AuditTrail(
                connection,
                maxlen=settings.audit_maxlen,
                retention_days=settings.audit_retention_days,
            ),
            redactor=Redactor(settings.sensitive_fields, cards=settings.redact_card_numbers),
        )

    def queue(self, name: str) -> Queue:
        """A handle on queue ``name`` (validated); cheap, holds no data."""
        return Queue(name, self.connection)
