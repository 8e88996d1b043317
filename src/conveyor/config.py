"""All settings in one place, read from ``CONVEYOR_*`` environment variables.

Validation happens when :class:`Settings` is built, so a bad value stops the process at
startup with a message naming the variable.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from conveyor.errors import ConfigError

REDIS_SCHEMES = ("redis", "rediss", "unix")


class Settings(BaseSettings):
    """Process-wide configuration. Every field maps to ``CONVEYOR_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="CONVEYOR_", extra="ignore")

    redis_url: str | None = Field(
        default=None,
        description="redis://, rediss:// or unix:// URL; unset starts an embedded server",
    )
    redis_tls_ca_file: Path | None = Field(
        default=None, description="CA bundle that signed the server's certificate (rediss://)"
    )
    redis_tls_cert_file: Path | None = Field(
        default=None, description="client certificate, when the server asks for one"
    )
    redis_tls_key_file: Path | None = Field(default=None, description="its private key")
    data_dir: Path = Field(default=Path(".conveyor"), description="embedded server's data")
    max_payload_bytes: int = Field(default=512 * 1024, gt=0, le=64 * 1024 * 1024)
    lease_seconds: float = Field(default=30.0, gt=0, le=86_400)
    stall_check_interval: float = Field(default=5.0, gt=0, le=3_600)
    max_stalls: int = Field(default=1, ge=0, le=1_000)
    events_maxlen: int = Field(default=10_000, ge=100)
    shutdown_grace: float = Field(default=30.0, ge=0)
    log_level: str = Field(default="INFO")

    @field_validator("redis_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        scheme = urlparse(value).scheme
        if scheme not in REDIS_SCHEMES:
            raise ValueError(
                f"scheme {scheme!r} is not supported; use one of "
                + ", ".join(f"{s}://" for s in REDIS_SCHEMES)
            )
        return value

    @field_validator("redis_tls_ca_file", "redis_tls_cert_file", "redis_tls_key_file")
    @classmethod
    def _check_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a readable file")
        return value

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("use DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment plus ``overrides``; raise :class:`ConfigError`."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = "CONVEYOR_" + str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise ConfigError(field, first["msg"]) from exc
