"""Counting the SQL statements a request sends (a count, not a timing: the same on any machine)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event


@contextmanager
def statements(app) -> Iterator[list[str]]:
    """Every statement the app's engine sends while the block runs, abridged."""
    engine = app.state.sessions.kw["bind"].sync_engine
    seen: list[str] = []

    def note(_conn, _cursor, statement, *_args) -> None:
        seen.append(" ".join(statement.split())[:160])

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def reads_after_writes(seen: list[str]) -> list[str]:
    """The reads sent after the first write (a write's own lock, as SQLite's, is a write; so is
    a WITH that inserts, app/storage/batch.py)."""
    writes = ("INSERT", "UPDATE", "DELETE")
    first = next(
        (i for i, s in enumerate(seen) if s.startswith(writes) or _inserts_with(s)), len(seen)
    )
    return [s for s in seen[first:] if s.startswith("SELECT")]


def _inserts_with(statement: str) -> bool:
    return statement.startswith("WITH") and " AS (INSERT INTO " in statement
