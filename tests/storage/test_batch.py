"""Writing a plan's rows (app/storage/batch.py): every table in one statement on PostgreSQL,
one per table on SQLite, and either way the same rows, in the order given, with JSON stored as
the columns' types write it. On tables of the test's own, so that the shapes tried are not only
those intake writes today."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    event,
    select,
    text,
)

from app.storage.batch import insert_all
from app.storage.columns import CanonicalJSON, UTCDateTime
from app.storage.db import make_engine


def _tables(suffix: str) -> tuple[MetaData, Table, Table]:
    metadata = MetaData()
    parent = Table(
        f"batch_parent_{suffix}",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("name", String(20)),
        Column("at", UTCDateTime),
    )
    child = Table(
        f"batch_child_{suffix}",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("parent_id", Uuid, ForeignKey(parent.c.id), nullable=False),
        Column("fields", JSON),
        Column("details", CanonicalJSON),
    )
    return metadata, parent, child


@pytest.fixture
async def tables(database_url):
    engine = make_engine(database_url)
    metadata, parent, child = _tables(uuid.uuid4().hex[:8])
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    try:
        yield engine, parent, child
    finally:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
        await engine.dispose()


async def test_the_rows_are_written_in_order_children_before_parents_in_one_statement(
    tables, clock
):
    engine, parent, child = tables
    now = datetime.combine(clock.today, datetime.min.time(), UTC)
    parents = [{"id": uuid.uuid4(), "name": f"p{i}", "at": now + timedelta(i)} for i in range(3)]
    children = [
        {
            "parent_id": parents[i % 3]["id"],
            "fields": ["/person", "/release"][: i % 3] if i % 2 else None,
            "details": {"é": i, "b": [1, {"a": None}]},
        }
        for i in range(7)
    ]
    seen: list[str] = []
    async with engine.begin() as connection:

        def note(_conn, _cursor, statement, *_args) -> None:
            seen.append(statement)

        event.listen(engine.sync_engine, "before_cursor_execute", note)
        # The children are named first: on PostgreSQL the foreign key holds at the statement's
        # end; on SQLite (one statement per table, in order) the parents go first.
        order = [(parent, parents), (child, children)]
        if engine.dialect.name == "postgresql":
            order.reverse()
        await insert_all(connection, order)
        event.remove(engine.sync_engine, "before_cursor_execute", note)
    assert len(seen) == (1 if engine.dialect.name == "postgresql" else 2), seen
    async with engine.connect() as connection:
        stored = (await connection.execute(select(child).order_by(child.c.id))).all()
        assert [(r.parent_id, r.fields, r.details) for r in stored] == [
            (c["parent_id"], c["fields"], c["details"]) for c in children
        ]
        # The canonical text itself is stored (the log's verifier splices it): keys sorted,
        # no spaces, UTF-8 as is.
        raw = (await connection.execute(text(f"SELECT details FROM {child.name}"))).scalars()
        if engine.dialect.name == "postgresql":
            raw = (
                await connection.execute(text(f"SELECT details::text FROM {child.name}"))
            ).scalars()
        assert next(iter(raw)) == '{"b":[1,{"a":null}],"é":0}'
        rows = (await connection.execute(select(parent).order_by(parent.c.name))).all()
        assert [(r.id, r.at) for r in rows] == [(p["id"], p["at"]) for p in parents]


async def test_a_broken_row_writes_nothing(tables):
    engine, parent, child = tables
    with pytest.raises(Exception):  # noqa: B017 - the driver's own error, whichever it is
        async with engine.begin() as connection:
            await insert_all(
                connection,
                [
                    (parent, [{"id": uuid.uuid4(), "name": "p", "at": None}]),
                    (child, [{"parent_id": uuid.uuid4(), "fields": [], "details": {}}]),
                ],
            )
    async with engine.connect() as connection:
        assert (await connection.execute(select(parent))).all() == []
        assert (await connection.execute(select(child))).all() == []


@pytest.mark.parametrize("size", [0, 1, 3, 40])
async def test_a_table_keeps_the_order_of_its_rows(tables, size):
    """However many rows, their ids follow the order they were given in; a table given no rows
    is left out."""
    engine, parent, child = tables
    anchor = uuid.uuid4()
    children = [{"parent_id": anchor, "fields": [size - i], "details": {}} for i in range(size)]
    async with engine.begin() as connection:
        await insert_all(
            connection, [(parent, [{"id": anchor, "name": "a", "at": None}]), (child, children)]
        )
    async with engine.connect() as connection:
        stored = (await connection.execute(select(child.c.fields).order_by(child.c.id))).all()
    assert [r.fields for r in stored] == [[size - i] for i in range(size)]


async def test_a_table_named_twice_is_refused(tables):
    """PostgreSQL runs the parts of one statement in no set order: two runs of rows for one
    table could land in either order, so a table's rows are given at once."""
    engine, parent, child = tables
    anchor = uuid.uuid4()
    one = {"parent_id": anchor, "fields": [], "details": {}}
    async with engine.begin() as connection:
        with pytest.raises(ValueError, match="named twice"):
            await insert_all(
                connection,
                [
                    (parent, [{"id": anchor, "name": "a", "at": None}]),
                    (child, [one]),
                    (child, [one]),
                ],
            )
