"""A database that will not take a write, and the 503 problem every outage is answered with."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from typing import Any

import httpx
from sqlalchemy.engine import make_url

PROBLEM = "application/problem+json"


@contextlib.contextmanager
def sqlite_write_locked(database_url: str) -> Iterator[None]:
    """Another process holds SQLite's write lock until the end."""
    holder = sqlite3.connect(make_url(database_url).database, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
    finally:
        holder.close()  # rolls the transaction back and lets go of the lock


def assert_unavailable(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM
    assert int(response.headers["retry-after"]) > 0
    body = response.json()
    assert body["status"] == 503 and body["title"] and body["type"]
    assert "Traceback" not in response.text
    return body
