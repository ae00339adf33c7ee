"""A JWK as an outsider gives it (a client's key, a recipient's encryption key): read here, in
the exchange's own words, before any JOSE or crypto library sees it.

Pure: no I/O. Every refusal is a ValueError whose message says what is wrong with the key and
never repeats a library's text: the operator reads it, and it must not leak how we parse.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from app.wire import strict_json
from app.wire.base import is_one_line

PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
MAX_KID = 128


def read_jwk(text: str) -> dict[str, Any]:
    """The JWK's members: I-JSON (strict_json), an object, and no private member."""
    try:
        given = strict_json.loads(text)
    except strict_json.JsonRefused as refused:
        where = f" at {refused.pointer}" if refused.pointer else ""
        raise ValueError(f"the JWK{where} {refused.detail}") from None
    if not isinstance(given, dict):
        raise ValueError("the JWK must be a JSON object")
    if any(m in given for m in PRIVATE_MEMBERS):
        raise ValueError("give the public key only, never the private one")
    return given


def kid_of(given: dict[str, Any]) -> str | None:
    """The kid the JWK gives, if any: it is stored and sent back in headers, so it must be one
    line of 1 to 128 characters."""
    kid = given.get("kid")
    if kid is None:
        return None
    if not (isinstance(kid, str) and 0 < len(kid) <= MAX_KID and is_one_line(kid)):
        raise ValueError(f"kid must be a string of 1 to {MAX_KID} characters on one line")
    return kid


def b64url_uint(value: object, name: str) -> int:
    """A JWK member that holds a number as unpadded base64url (RFC 7518 section 2)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"its {name} is not a base64url number")
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
    except binascii.Error:
        raise ValueError(f"its {name} is not a base64url number") from None
    return int.from_bytes(raw, "big")
