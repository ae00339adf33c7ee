"""The problem a request has, as an exception any layer may raise. No web framework here:
app/api/problems.py renders it as RFC 9457 problem details.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

TYPE_BASE = "https://nps-exchange.example/problems/"


class Problem(Exception):
    """Raise to answer with a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        type: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.type = type or TYPE_BASE + title.lower().replace(" ", "-")
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


def invalid(errors: Sequence[Mapping[str, str]], detail: str | None = None) -> Problem:
    """422 naming each failing field by JSON Pointer."""
    return Problem(
        422,
        "Validation failed",
        detail or "; ".join(f"{e['pointer'] or '/'}: {e['detail']}" for e in errors),
        extra={"errors": list(errors)},
    )
