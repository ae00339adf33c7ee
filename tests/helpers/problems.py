"""RFC 9457 problems as every API test checks them."""

from __future__ import annotations

from typing import Any

import httpx

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, case: str = "") -> dict[str, Any]:
    """The answer is a problem of this status, with its type, title and detail: its body."""
    assert response.status_code == status, f"{case}: {response.text}"
    assert response.headers["content-type"].startswith(PROBLEM), case
    body = response.json()
    assert body["status"] == status, case
    assert body["type"] and body["title"] and body["detail"], case
    return body
