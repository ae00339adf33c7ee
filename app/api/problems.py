"""RFC 9457 problem details: every error the API gives, and never a stack trace."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.access.organisations import AdminError
from app.storage import db
from app.wire.base import PATTERN_WORDS
from app.wire.errors import Problem, invalid
from app.wire.schemas import ProblemOut

PROBLEM_JSON = "application/problem+json"
PROBLEM_SCHEMA = "Problem"


def documented(description: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{PROBLEM_SCHEMA}"}
    return {"description": description, "content": {PROBLEM_JSON: {"schema": ref}}}


# The error answers every route documents: RFC 9457 problem details, never anything else.
PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: documented("The request cannot be served as sent."),
    401: documented("No valid credentials; the WWW-Authenticate header says which are needed."),
    403: documented("The credentials are valid but lack the scope this needs."),
    404: documented("No such resource, or it belongs to another organisation."),
    422: documented("The body or a parameter is not valid; `errors` names each field."),
    503: documented(
        "The database is busy or cannot be reached: try again after `Retry-After` seconds. "
        "The detail says whether anything was stored (nothing, unless the connection was lost "
        "while the request was being committed)."
    ),
}


def with_problem_schema(document: dict[str, Any]) -> dict[str, Any]:
    """Add the Problem schema that PROBLEMS refers to to an OpenAPI document."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas[PROBLEM_SCHEMA] = ProblemOut.model_json_schema()
    return document


log = logging.getLogger("exchange.api")


def problem_response(problem: Problem) -> JSONResponse:
    body = {
        "type": problem.type,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        **problem.extra,
    }
    return JSONResponse(body, problem.status, headers=problem.headers, media_type=PROBLEM_JSON)


def _pointer(loc: Sequence[int | str]) -> str:
    parts = list(loc[1:]) if loc and loc[0] in ("body", "query", "path", "header") else list(loc)
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def validation_errors(raw: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    errors = []
    for error in raw:
        loc = tuple(error.get("loc", ()))
        # pydantic puts the union member or the type name in loc; they are not fields.
        loc = tuple(
            p for p in loc if not (isinstance(p, str) and p.startswith(("function-", "is-")))
        )
        kind, message = error.get("type"), error.get("msg", "is not valid")
        if kind == "json_invalid":  # loc holds a character position, not a field
            errors.append({"pointer": "", "detail": "the body is not valid JSON"})
            continue
        if kind == "extra_forbidden":
            message = "is not a known field"
        elif kind == "string_pattern_mismatch":
            message = PATTERN_WORDS.get(error.get("ctx", {}).get("pattern"), message)
        elif kind == "string_unicode":
            message = "must be Unicode text (a lone surrogate is not)"
        elif kind == "value_error":  # our own words, without pydantic's prefix
            message = message.removeprefix("Value error, ")
        errors.append({"pointer": _pointer(loc), "detail": message})
    return errors


def install(app: FastAPI) -> None:
    async def on_problem(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(exc)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return problem_response(invalid(validation_errors(exc.errors())))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed(request)
        return problem_response(Problem(exc.status_code, title, str(exc.detail), headers=headers))

    async def on_admin(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AdminError)
        if exc.missing:
            return problem_response(Problem(404, "Not found", str(exc)))
        if exc.conflict:
            return problem_response(Problem(409, "Conflict", str(exc)))
        return problem_response(invalid([{"pointer": exc.pointer, "detail": str(exc)}]))

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(AdminError, on_admin)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_middleware(ContainUnexpected)


METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed(request: Request) -> str:
    """Every method some route serves at this path (RFC 9110 section 15.5.6), where the router
    names only those of the first route whose path matched. Asked of the routes themselves,
    with a fresh scope per method, so included routers answer for their own routes."""
    path = {"type": "http", "path": request.scope["path"], "root_path": "", "headers": []}
    return ", ".join(
        method
        for method in METHODS
        if any(
            route.matches({**path, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    )


class ContainUnexpected:
    """Turn any unhandled exception into a bare 500 problem, or a 503 when the database is out
    of reach (_unexpected), logging its type and nothing else.

    Starlette's own handler for Exception answers and then re-raises, so the server logs the
    traceback, and a database error's text carries the SQL parameters: the notice itself.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            # The route's template, not the path: a path may hold a NOMS number.
            route = getattr(scope.get("route"), "path", "(no route)")
            outage = db.outage(exc)
            if outage is None:
                log.error("unhandled %s on %s %s", type(exc).__name__, scope["method"], route)
            else:  # the driver's error names the cause; its text may carry SQL parameters
                cause = type(_innermost(exc)).__name__
                what = "lost while committing" if isinstance(exc, db.CommitLost) else outage
                log.error("database %s (%s) on %s %s", what, cause, scope["method"], route)
            if not started:
                await problem_response(_unexpected(exc))(scope, receive, send)


BUSY_RETRY_AFTER_SECONDS = 5
UNAVAILABLE_RETRY_AFTER_SECONDS = 30
CONFLICT_RETRY_AFTER_SECONDS = 1
# SQLSTATEs of a transaction that PostgreSQL rolled back because of a concurrent one: a
# serialization failure and a deadlock. Nothing of it was stored; the same request again may pass.
ROLLED_BACK_FOR_ANOTHER = {"40001", "40P01"}
_AT_MOST_ONCE = (
    "(with the same Idempotency-Key a notice or an acknowledgement is never stored twice)"
)


def _innermost(exc: BaseException) -> BaseException:
    """The driver's error under the wrappers; a timeout's own cause (the cancelled wait) says
    nothing more."""
    while exc.__cause__ is not None and not isinstance(exc.__cause__, asyncio.CancelledError):
        exc = exc.__cause__
    return exc


def _rolled_back_for_another(exc: Exception) -> bool:
    return isinstance(exc, sqlalchemy.exc.DBAPIError) and (
        getattr(exc.orig, "sqlstate", None) in ROLLED_BACK_FOR_ANOTHER
    )


def _unexpected(exc: Exception) -> Problem:
    """A 503 when the database is out of reach: busy (every connection stayed busy, or another
    held the lock, past the busy timeout) or unavailable (it cannot be reached or dropped the
    connection). Nothing of the request was committed then, and a retry may well succeed;
    unless the connection dropped during the COMMIT, when whether it was stored is unknown, and
    the detail says so. A transaction that the database rolled back for a concurrent one (a
    deadlock or a serialization failure) stored nothing either, and may pass at once if sent
    again. Anything else is a 500."""
    if _rolled_back_for_another(exc):
        return Problem(
            503,
            "Concurrent change",
            "A concurrent change got in the way and nothing of this request was stored: try "
            f"again {_AT_MOST_ONCE}.",
            headers={"retry-after": str(CONFLICT_RETRY_AFTER_SECONDS)},
        )
    outage = db.outage(exc)
    if outage == "busy":
        return Problem(
            503,
            "Busy",
            "The exchange is too busy to take this now and stored nothing of it: try again "
            f"shortly {_AT_MOST_ONCE}.",
            headers={"retry-after": str(BUSY_RETRY_AFTER_SECONDS)},
        )
    if outage is None:
        return Problem(500, "Internal error", "The exchange failed to answer.")
    if isinstance(exc, db.CommitLost):
        detail = (
            "The exchange lost its database while committing this request, so whether it was "
            "stored is unknown: look before sending it again, or send it again with the same "
            "Idempotency-Key, which stores a notice or an acknowledgement at most once."
        )
    else:
        detail = (
            "The exchange cannot reach its database just now and stored nothing of this "
            f"request: try again shortly {_AT_MOST_ONCE}."
        )
    return Problem(
        503,
        "Database unavailable",
        detail,
        headers={"retry-after": str(UNAVAILABLE_RETRY_AFTER_SECONDS)},
    )
