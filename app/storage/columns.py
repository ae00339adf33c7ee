"""The column types and the declarative base every table is built on (app/storage/models.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, MetaData, TypeDecorator
from sqlalchemy.orm import DeclarativeBase

from app.wire.canonical import canonical_json

# SQLite has no BIGINT rowid alias: only INTEGER PRIMARY KEY autoincrements there.
BigId = BigInteger().with_variant(Integer, "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class CanonicalJSON(TypeDecorator[Any]):
    """JSON written as its RFC 8785 canonical text (app/wire/canonical.py), read back as any JSON.

    A log entry's details are stored so: PostgreSQL's json type keeps the text as written, so
    `exchange audit verify` can splice it into the entry's canonical document instead of parsing
    and writing it again (app/audit/rows.py). Rows written before (json.dumps' text) still verify,
    the slow way. The column stays JSON: only the text written differs."""

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Any) -> Any:
        # Replaces JSON's json.dumps rather than feeding it (process_bind_param would): the
        # driver is given the canonical text itself.
        def process(value: Any) -> str:
            return canonical_json(value).decode()

        return process


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
