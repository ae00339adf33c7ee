"""Cursor pagination shared by every list: ?cursor= in, next_cursor out, ?limit= bounded."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Query
from pydantic import BeforeValidator


def _in_digits(value: object) -> object:
    """A number in a query is written in digits: never 1.0, 1_000 or " 1", which pydantic's lax
    reading of a query's text would take as 1 and 1000."""
    if isinstance(value, str) and not re.fullmatch(r"[0-9]{1,18}", value):
        raise ValueError("must be a whole number, in digits")
    return value


# Put after Query(...) in Annotated, so that its bounds still reach the published contract.
IN_DIGITS = BeforeValidator(_in_digits)
Limit = Annotated[int, Query(ge=1, le=200, description="Items per page."), IN_DIGITS]
Cursor = Annotated[
    str | None,
    Query(pattern=r"^[0-9]{1,18}$", description="next_cursor from the previous page."),
]


def after(cursor: str | None) -> int:
    return int(cursor) if cursor else 0


def next_cursor(positions: list[int], limit: int) -> str | None:
    """A cursor only when the page is full: a short page is the last one."""
    return str(positions[-1]) if len(positions) == limit else None


def next_offset(cursor: str | None, count: int, limit: int) -> str | None:
    """next_cursor for a list paged by offset: the cursor is how many items came before."""
    return str(after(cursor) + count) if count == limit else None


AfterSequence = Annotated[
    str | None,
    Query(alias="after", pattern=r"^[0-9]{1,18}$", description="Only items after this sequence."),
]
