"""What a request body may be, checked before any handler sees it: 413 and 415 as problems.

A body is read into memory only up to MAX_BODY_BYTES: a larger one, declared or streamed, is
refused as soon as that is known. A body must be application/json in UTF-8 (no other type, not
even a +json one: the contract names only this), except at the token endpoint, which RFC 6749
makes form-encoded. JSON that cannot be read at all (bad syntax, bad UTF-8, NaN or Infinity,
nesting deeper than strict_json.MAX_DEPTH), or that another parser could read otherwise (a
member given twice, a lone surrogate: app/wire/strict_json.py), is a 422 here naming where,
whatever a parser deeper in the stack would have done.
"""

from __future__ import annotations

from email.message import Message as MimeHeader

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.problems import problem_response
from app.wire import strict_json
from app.wire.errors import Problem, invalid

MAX_BODY_BYTES = 256 * 1024
FORM_PATHS = {"/oauth/token": "application/x-www-form-urlencoded"}
FORM_PREFIX = "/console/"  # the web console (app/console) posts HTML forms


def _media_type(value: str) -> tuple[str, str | None]:
    header = MimeHeader()
    header["content-type"] = value
    return header.get_content_type(), header.get_param("charset")  # type: ignore[return-value]


def acceptable(path: str, content_type: str | None) -> bool:
    if content_type is None:
        return False
    media_type, charset = _media_type(content_type)
    if charset is not None and str(charset).lower() not in ("utf-8", "utf8"):
        return False
    if path in FORM_PATHS:
        return media_type == FORM_PATHS[path]
    if path.startswith(FORM_PREFIX):  # the console's HTML forms
        return media_type == "application/x-www-form-urlencoded"
    return media_type == "application/json"


class BodyRules:
    """ASGI middleware: bound the body's size and check its media type, answering problems."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        too_large = Problem(
            413, "Content too large", f"The body may be at most {self.max_bytes} bytes."
        )
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await problem_response(too_large)(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await problem_response(too_large)(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and not acceptable(scope["path"], headers.get("content-type")):
            wanted = FORM_PATHS.get(scope["path"], "application/json")
            if scope["path"].startswith(FORM_PREFIX):
                wanted = "application/x-www-form-urlencoded"
            unsupported = Problem(415, "Unsupported media type", f"The body must be {wanted}.")
            await problem_response(unsupported)(scope, receive, send)
            return
        if body and scope["path"] not in FORM_PATHS and not scope["path"].startswith(FORM_PREFIX):
            try:
                strict_json.loads(body)
            except strict_json.JsonRefused as refused:
                detail = refused.detail if refused.pointer else f"the body {refused.detail}"
                unreadable = invalid([{"pointer": refused.pointer, "detail": detail}])
                await problem_response(unreadable)(scope, receive, send)
                return
        await self.app(scope, _replay(body, receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the whole body once, then whatever the client sends next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
