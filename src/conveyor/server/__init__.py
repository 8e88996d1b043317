"""The operations server: a stateless REST API over Redis (FastAPI; ``pip install
conveyor[server]``). Build the app with :func:`create_app`; run it with ``conveyor server``."""

from conveyor.server.app import API_PREFIX, create_app
from conveyor.server.auth import ApiKey, KeyStore, Principal, Role
from conveyor.server.redaction import Redactor
from conveyor.server.settings import HealthThresholds, ServerSettings, load_server_settings

__all__ = [
    "API_PREFIX",
    "ApiKey",
    "HealthThresholds",
    "KeyStore",
    "Principal",
    "Redactor",
    "Role",
    "ServerSettings",
    "create_app",
    "load_server_settings",
]
