"""Engines and sessions, and telling a database outage from an error. (A request's session, and
its commit, is app.api.deps.Session.)"""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path
from typing import Any, Literal

import sqlalchemy.exc
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(
    url: str,
    *,
    busy_timeout_seconds: float = 30,
    connect_timeout_seconds: float = 10,
    command_timeout_seconds: float | None = None,
) -> AsyncEngine:
    """An engine for the configured database; on SQLite, the file's folder is created too.
    A statement waits up to busy_timeout_seconds for a pooled connection (PostgreSQL) or for
    another connection's lock (both: PostgreSQL's lock_timeout, SQLite's busy timeout), then
    fails as outage() "busy". On PostgreSQL, connecting gives up after connect_timeout_seconds
    (DatabaseUnreachable), and each statement after command_timeout_seconds (None: never), with
    a TimeoutError, "unavailable": a server that stops answering holds nobody for good."""
    if not is_sqlite(url):
        lock_timeout_ms = max(1, round(busy_timeout_seconds * 1000))  # 0 would mean no limit
        engine = create_async_engine(
            url,
            pool_size=10,
            max_overflow=10,
            pool_pre_ping=True,
            pool_timeout=busy_timeout_seconds,
            connect_args={
                "timeout": connect_timeout_seconds,
                "command_timeout": command_timeout_seconds,
                "server_settings": {"lock_timeout": str(lock_timeout_ms)},
            },
        )
    else:
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": busy_timeout_seconds})
        busy_timeout_ms = int(busy_timeout_seconds * 1000)
        pragmas = functools.partial(_sqlite_pragmas, busy_timeout_ms=busy_timeout_ms)
        event.listen(engine.sync_engine, "connect", pragmas)
    event.listen(engine.sync_engine, "do_connect", _connect)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, *, busy_timeout_ms: int) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    cursor.close()


class DatabaseUnreachable(Exception):
    """Connecting to the database failed, whatever the driver said (refused, timed out, not
    accepting connections, no such database, shutting down): nothing was done there."""


class CommitLost(Exception):
    """The connection was lost while the transaction was being committed: whether the
    database stored it is unknown (raised by the request's session, app.api.deps)."""


def _connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
    try:
        return dialect.connect(*cargs, **cparams)
    except Exception as exc:  # the driver's own error, kept as the cause
        raise DatabaseUnreachable(type(exc).__name__) from exc


Outage = Literal["busy", "unavailable"]
# PostgreSQL's SQLSTATEs of a server going away or out of resources: connection exceptions
# (class 08), insufficient resources (53: disk full, out of memory, too many connections),
# and admin shutdown, crash shutdown, cannot connect now (57P01-57P03).
_UNREACHABLE_SQLSTATE_CLASSES = ("08", "53")
_UNREACHABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})
# Another connection's lock held past lock_timeout (lock_not_available), as SQLite's busy; and
# a statement cancelled past an operator's statement_timeout (query_canceled): the server could
# not answer in time, and a retry later may well succeed.
_BUSY_SQLSTATES = frozenset({"55P03", "57014"})
# SQLite's primary result codes of a database out of reach: its file cannot be opened, read or
# written, is full, or was moved away (READONLY_DBMOVED).
_UNREACHABLE_SQLITE_CODES = frozenset(
    {sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY}
)
_BUSY_SQLITE_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


def outage(exc: BaseException) -> Outage | None:
    """Whether `exc` says the database is out of reach for now rather than that the code or the
    data is wrong: "busy" (no pooled connection, or another connection's lock, within the busy
    timeout), "unavailable" (connecting failed, the connection dropped, the server is going away,
    did not answer within the command timeout, or its disk failed), or None: an error a retry
    would meet again (a bug, a constraint, a missing table), which stays an error."""
    if isinstance(exc, CommitLost | DatabaseUnreachable):
        return "unavailable"
    if isinstance(exc, TimeoutError):  # the driver's own: a statement past its command timeout
        return "unavailable"
    if isinstance(exc, sqlalchemy.exc.TimeoutError):
        return "busy"
    if not isinstance(exc, sqlalchemy.exc.DBAPIError):
        return None
    if exc.connection_invalidated:
        return "unavailable"
    driver_error: BaseException | None = exc.orig
    while driver_error is not None:  # the dialect's wrapper, then the driver's own error
        sqlstate = getattr(driver_error, "sqlstate", None)
        if isinstance(sqlstate, str):
            if sqlstate in _UNREACHABLE_SQLSTATES or sqlstate[:2] in _UNREACHABLE_SQLSTATE_CLASSES:
                return "unavailable"
            if sqlstate in _BUSY_SQLSTATES:
                return "busy"
            return None
        code = getattr(driver_error, "sqlite_errorcode", None)
        if isinstance(code, int):
            if code & 0xFF in _BUSY_SQLITE_CODES:
                return "busy"
            return "unavailable" if code & 0xFF in _UNREACHABLE_SQLITE_CODES else None
        driver_error = driver_error.__cause__
    return None


async def flush_pending(session: AsyncSession) -> None:
    """Write what the session holds pending, if anything: before Core statements that must follow
    it (rows they refer to, log entries they come after)."""
    if session.new or session.dirty or session.deleted:
        await session.flush()


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
