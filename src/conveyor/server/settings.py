"""Settings of the operations server, from ``CONVEYOR_SERVER_*`` environment variables."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from conveyor.errors import ConfigError

DEFAULT_SENSITIVE = (
    "password", "passwd", "secret", "token", "api_key", "apikey", "authorization",
    "cookie", "session", "card", "cvv", "ssn", "iban", "private_key",
)  # fmt: skip


class HealthThresholds(BaseModel):
    """When a queue turns degraded or unhealthy; ``None`` switches a check off.

    The defaults follow the examples the team was given: a backlog over 100 waiting jobs
    degrades, more than 20 dead jobs is unhealthy, no fetch for 5 minutes degrades.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    waiting_degraded: int | None = Field(default=100, ge=0)
    waiting_unhealthy: int | None = Field(default=10_000, ge=0)
    dead_degraded: int | None = Field(default=1, ge=0)
    dead_unhealthy: int | None = Field(default=20, ge=0)
    dead_per_minute_unhealthy: float | None = Field(default=10.0, ge=0)
    oldest_waiting_degraded: float | None = Field(default=300.0, ge=0)
    idle_with_work_degraded: float | None = Field(default=300.0, ge=0)
    failure_rate_degraded: float | None = Field(default=0.2, ge=0, le=1)
    failure_rate_unhealthy: float | None = Field(default=0.5, ge=0, le=1)
    failure_rate_min_samples: int = Field(default=10, ge=1)
    window_seconds: float = Field(default=300.0, gt=0, le=86_400)
    no_worker_unhealthy: bool = True


class ServerSettings(BaseSettings):
    """Every field maps to ``CONVEYOR_SERVER_<FIELD>`` (lists and objects as JSON)."""

    model_config = SettingsConfigDict(env_prefix="CONVEYOR_SERVER_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65_535)
    max_body_bytes: int = Field(default=1024 * 1024, gt=0, le=64 * 1024 * 1024)
    rate_limit_per_minute: int = Field(default=1200, ge=1)
    # Per client address: after this many presented-but-invalid keys in a minute, every
    # key it presents is refused with 429 until the minute ends (guessing keys is slow).
    auth_failures_per_minute: int = Field(default=30, ge=1)
    audit_maxlen: int = Field(default=100_000, ge=100)
    audit_retention_days: float = Field(default=90.0, gt=0)
    sensitive_fields: tuple[str, ...] = DEFAULT_SENSITIVE
    redact_card_numbers: bool = True
    cors_origins: tuple[str, ...] = ()
    # Long enough that a busy event loop reading a reply late is not taken for an outage;
    # a Redis that is down refuses connections at once anyway.
    redis_timeout: float = Field(default=5.0, gt=0, le=60)
    health: HealthThresholds = HealthThresholds()
    queue_health: dict[str, HealthThresholds] = {}

    def thresholds(self, queue: str) -> HealthThresholds:
        return self.queue_health.get(queue, self.health)


def load_server_settings(**overrides: object) -> ServerSettings:
    """Environment plus ``overrides``; a bad value raises :class:`ConfigError` naming it."""
    try:
        return ServerSettings(**overrides)  # type: ignore[arg-type]
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        loc = first["loc"][0] if first["loc"] else "settings"
        raise ConfigError(f"CONVEYOR_SERVER_{str(loc).upper()}", first["msg"]) from exc
