"""Versioned schema migrations: ``schemas/migrations/NNNN_name.sql`` applied in order, once each.

``migrate`` takes a session advisory lock (so concurrent runners queue instead of racing), records
each applied file with its SHA-256 in ``schema_migrations`` and refuses to run when an applied
file has changed since (edit the schema with a new migration, never in place). Each file runs in
its own database transaction. Re-running applies nothing and returns ``[]``.

The migrations also create the application role ``hera_app`` (NOLOGIN, NOBYPASSRLS): tenant-scoped
work runs as ``SET LOCAL ROLE hera_app`` plus ``app.organization_id`` (see ``LedgerStore``). The
user running the migrations owns the tables and must be a superuser or hold BYPASSRLS to see
across tenants (verify, export of every organisation); rows stay protected by FORCE ROW LEVEL
SECURITY for everyone else.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from pipeline.ledger.errors import MigrationError

MIGRATIONS_PACKAGE = "schemas.migrations"
MIGRATION_NAME_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
ADVISORY_LOCK_KEY = 0x48455241_4D494752  # "HERAMIGR"
APP_ROLE = "hera_app"
CONNECT_TIMEOUT_SECONDS = 10.0
LOCK_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def available_migrations() -> list[Migration]:
    """Every migration shipped in the package, in version order (raises on a malformed set)."""
    found: list[Migration] = []
    for item in resources.files(MIGRATIONS_PACKAGE).iterdir():
        match = MIGRATION_NAME_RE.match(item.name)
        if match is None:
            continue
        found.append(Migration(match.group(1), item.name, item.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a version: {versions}")
    return found


async def migrate(conn_or_dsn: asyncpg.Connection | str) -> list[str]:
    """Apply pending migrations; return the file names applied by this call (in order)."""
    if isinstance(conn_or_dsn, str):
        conn = await asyncpg.connect(conn_or_dsn, timeout=CONNECT_TIMEOUT_SECONDS)
        try:
            return await _migrate(conn)
        finally:
            await conn.close()
    return await _migrate(conn_or_dsn)


async def _migrate(conn: asyncpg.Connection) -> list[str]:
    await conn.execute(f"SET lock_timeout = '{int(LOCK_TIMEOUT_SECONDS * 1000)}ms'")
    await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
    try:
        await conn.execute("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    text PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )""")
        applied = {r["version"]: r for r in await conn.fetch("SELECT version, name, checksum FROM schema_migrations")}
        shipped = available_migrations()
        shipped_versions = {m.version for m in shipped}
        unknown = sorted(set(applied) - shipped_versions)
        if unknown:
            raise MigrationError(f"database has migrations this code does not know: {unknown}")
        done: list[str] = []
        for migration in shipped:
            row = applied.get(migration.version)
            if row is not None:
                if row["checksum"] != migration.checksum:
                    raise MigrationError(f"migration {migration.name} changed after it was applied")
                continue
            try:
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                        migration.version, migration.name, migration.checksum)
            except asyncpg.PostgresError as exc:
                raise MigrationError(f"migration {migration.name} failed: {exc.sqlstate} {exc}") from exc
            done.append(migration.name)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)
        await conn.execute("RESET lock_timeout")
