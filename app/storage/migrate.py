"""Alembic, driven from code: `exchange db upgrade`, the tests and /readyz use the same path."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import column, inspect, select, table
from sqlalchemy.engine import Connection

PROJECT_ROOT = Path(__file__).resolve().parents[2]


VERSION_TABLE = "alembic_version"  # alembic's default; migrations/env.py keeps it


def config(database_url: str, data_keys_dir: Path | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    cfg.attributes["database_url"] = database_url
    cfg.attributes["data_keys_dir"] = data_keys_dir  # a migration that seals data needs them
    return cfg


def upgrade(
    database_url: str, revision: str = "head", *, data_keys_dir: Path | None = None
) -> None:
    """Apply migrations. Runs its own event loop: call it outside a running one."""
    command.upgrade(config(database_url, data_keys_dir), revision)


@cache
def head_revision() -> str | None:
    return ScriptDirectory.from_config(config("")).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at; None if it was never migrated. Read from alembic's
    version table, not through a MigrationContext: setting one up logs two INFO lines, and
    /readyz asks this on every call."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    versions = connection.execute(select(column("version_num")).select_from(table(VERSION_TABLE)))
    heads = sorted(versions.scalars())
    return " ".join(heads) or None  # several heads are no revision the code is at
