"""``conveyor keys create|ls|revoke`` and ``conveyor audit``: API keys and the audit trail."""

from __future__ import annotations

import json

import click

from conveyor.cli.common import audit, console, run, table, url_option, when
from conveyor.connection import Connection


@click.group()
def keys() -> None:
    """API keys of the operations server."""


@keys.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["viewer", "operator", "admin"]), required=True)
@click.option("--queue", "queues", multiple=True, help="restrict the key to this queue")
@url_option
def keys_create(name: str, role: str, queues: tuple[str, ...], url: str | None) -> None:
    """Create a key; its token is printed once and cannot be shown again."""
    from conveyor.server.auth import KeyStore

    async def action(conn: Connection) -> str:
        key, token = await KeyStore(conn).create(name, role, queues)
        await audit(conn, "create_key", {"key_id": key.id}, {"name": name, "role": role})
        return token

    token = run(url, action)
    console.print(f"created {role} key {name!r}; the token (shown once):", style="bold")
    click.echo(token)


@keys.command("ls")
@url_option
def keys_ls(url: str | None) -> None:
    from conveyor.server.auth import KeyStore

    async def action(conn: Connection) -> None:
        rows = [[k.id, k.name, k.role, ",".join(k.queues) or "all", when(k.created_at),
                 when(k.revoked_at)] for k in await KeyStore(conn).list()]  # fmt: skip
        table("API keys", ["id", "name", "role", "queues", "created", "revoked"], rows)

    run(url, action)


@keys.command("revoke")
@click.argument("key_id")
@url_option
def keys_revoke(key_id: str, url: str | None) -> None:
    from conveyor.server.auth import KeyStore

    async def action(conn: Connection) -> bool:
        found = await KeyStore(conn).revoke(key_id) is not None
        if found:
            await audit(conn, "revoke_key", {"key_id": key_id}, None)
        return found

    if not run(url, action):
        raise click.ClickException(f"no key {key_id!r}")
    console.print(f"revoked {key_id}")


@click.command("audit")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--key-id", default=None)
@click.option("--action", "action_name", default=None)
@url_option
def audit_log(limit: int, key_id: str | None, action_name: str | None, url: str | None) -> None:
    """The audit trail, newest first."""
    from conveyor.server.audit import AuditTrail
    from conveyor.server.settings import load_server_settings

    async def action(conn: Connection) -> None:
        settings = load_server_settings()
        trail = AuditTrail(
            conn, maxlen=settings.audit_maxlen, retention_days=settings.audit_retention_days
        )
        entries, _ = await trail.read(limit=limit, key_id=key_id, action=action_name)
        rows = [[when(e.time), e.key_name, e.role, e.action, json.dumps(e.target),
                 e.client, e.status, e.outcome] for e in entries]  # fmt: skip
        table("audit trail", ["time", "who", "role", "action", "target", "client", "status",
                              "outcome"], rows)  # fmt: skip

    run(url, action)
