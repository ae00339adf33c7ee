"""Writing a plan's new rows in as few round trips as the database allows.

A use case's plan holds the rows it adds, table by table (app/notices/plan.py, for one). They are
written together at the end. On PostgreSQL that is one statement, whatever the number of rows:
each table's rows go as one array per column, and `INSERT ... SELECT FROM unnest(...) WITH
ORDINALITY` in a data-modifying WITH adds them in the order given (so the log's entries keep
theirs); foreign keys between the tables are checked at the end of the statement. Its text
depends only on the tables and columns, so it is built and compiled once for each such shape.
SQLite has no data-modifying WITH: there it is one executemany INSERT per table, parents first.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    Select,
    Table,
    Text,
    bindparam,
    cast,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

Rows = tuple[Table, Sequence[Mapping[str, Any]]]
Shape = tuple[tuple[Table, tuple[str, ...]], ...]


async def insert_all(connection: AsyncConnection, writes: Sequence[Rows]) -> None:
    """Insert each table's rows, every row of a table with the same keys, in the order given.
    Tables with no rows are left out. A table is named once: PostgreSQL runs the parts of a
    statement in no set order, so two runs of one table's rows could land in either order."""
    writes = [(table, list(rows)) for table, rows in writes if rows]
    if len({table for table, _ in writes}) < len(writes):
        raise ValueError("a table named twice: give all its rows at once")
    if connection.dialect.name != "postgresql" or len(writes) < 2:
        for table, rows in writes:
            await connection.execute(insert(table), rows)
        return
    shape = tuple((table, tuple(rows[0])) for table, rows in writes)
    statement, as_text = _statement(shape, connection.dialect)
    arrays = {}
    for i, (_, rows) in enumerate(writes):
        for column in rows[0]:
            values = [row[column] for row in rows]
            text = as_text.get((i, column))
            arrays[_name(i, column)] = [text(v) for v in values] if text else values
    await connection.execute(statement, arrays)


def _name(i: int, column: str) -> str:
    return f"t{i}_{column}"


@functools.cache
def _statement(
    shape: Shape, dialect: Dialect
) -> tuple[Select[Any], dict[tuple[int, str], Callable[[Any], str]]]:
    """The one statement that inserts rows of this shape (PostgreSQL), and how each JSON
    column's values are written as text (as the engine's dialect writes them): an array of
    JSON documents that are themselves arrays would be taken for a deeper array, so they go as
    text, cast back to the column's type."""
    added, as_text = [], {}
    for i, (table, columns) in enumerate(shape):
        arrays = []
        for c in columns:
            kind = table.c[c].type
            if isinstance(kind, JSON) or isinstance(getattr(kind, "impl", None), JSON):
                as_text[(i, c)] = kind.dialect_impl(dialect).bind_processor(dialect)
                kind = Text()
            arrays.append(bindparam(_name(i, c), type_=ARRAY(kind)))
        rows = func.unnest(*arrays).table_valued(*columns, with_ordinality="ordinal")
        rows = rows.render_derived()
        values = [
            cast(rows.c[c], table.c[c].type) if (i, c) in as_text else rows.c[c] for c in columns
        ]
        ordered = select(*values).order_by(rows.c.ordinal)
        added.append(insert(table).from_select(columns, ordered).cte(f"added_{i}"))
    return select(literal_column("1")).add_cte(*added), as_text
