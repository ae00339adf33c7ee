"""RFC 8785 JSON Canonicalization Scheme (JCS): the one byte string a log entry hashes to.

Pure: no I/O, no database. Objects (dicts with string keys), arrays (lists or tuples), strings,
booleans, null, integers and floats are canonicalised; anything else is refused.

- Object members are sorted by their names as UTF-16 code units (RFC 8785 section 3.2.3).
- Strings are escaped as ECMAScript's JSON.stringify does: only '"', '\\' and the controls
  below U+0020 (the short forms \\b \\t \\n \\f \\r, otherwise \\u00xx in lower case); every
  other character is written as itself in UTF-8. A lone surrogate is refused (I-JSON).
- Numbers are IEEE 754 doubles written as ECMAScript's Number.prototype.toString writes them
  (RFC 8785 section 3.2.2.3): the shortest digits that read back to the same double (which is
  what Python's float repr gives), laid out in ECMAScript's fixed or exponent form. NaN and the
  infinities are refused, -0 is written 0. Integers are numbers too: one beyond 2**53 in size
  has no exact double, so it is refused rather than silently rounded.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

MAX_EXACT_INTEGER = 2**53

_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 canonical form of value, as UTF-8 bytes.

    Raises ValueError for a value JSON cannot carry exactly (NaN, an infinity, an integer
    beyond 2**53, a lone surrogate) and TypeError for a type that is not JSON.
    """
    if _plain(value):
        try:
            return _DUMPS(value).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: refused below, with its reason
            pass
    parts: list[str] = []
    _write(value, parts.append)
    return "".join(parts).encode("utf-8")


# For a plain value (see _plain) json.dumps writes exactly these bytes, many times faster: its
# escapes are JSON.stringify's, and names in ASCII sort the same by code point as by UTF-16.
_DUMPS = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":")
).encode


def _plain(value: Any) -> bool:
    """Whether value holds only what json.dumps writes as RFC 8785 does: dicts with ASCII
    names, lists, strings, integers a double holds exactly, booleans and null (exact types:
    no float, no subclass). Anything else takes the long way."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return -MAX_EXACT_INTEGER <= value <= MAX_EXACT_INTEGER
    if kind is dict:
        for name, item in value.items():
            if type(name) is not str or not name.isascii():
                return False
            if type(item) is not str and not _plain(item):
                return False
        return True
    if kind is list or kind is tuple:
        return all(type(item) is str or _plain(item) for item in value)
    return False


def _write(value: Any, out: Callable[[str], None]) -> None:
    if value is None:
        out("null")
    elif value is True:
        out("true")
    elif value is False:
        out("false")
    elif isinstance(value, int):
        out(_integer(value))
    elif isinstance(value, float):
        out(_number(value))
    elif isinstance(value, str):
        out(_string(value))
    elif isinstance(value, list | tuple):
        out("[")
        for position, item in enumerate(value):
            if position:
                out(",")
            _write(item, out)
        out("]")
    elif isinstance(value, dict):
        for name in value:
            if not isinstance(name, str):
                raise TypeError(f"JSON object member names are strings, not {type(name).__name__}")
        out("{")
        for position, name in enumerate(sorted(value, key=_utf16_code_units)):
            if position:
                out(",")
            out(_string(name))
            out(":")
            _write(value[name], out)
        out("}")
    else:
        raise TypeError(f"{type(value).__name__} is not a JSON value")


def _utf16_code_units(name: str) -> bytes:
    # Big-endian UTF-16 bytes compare exactly as the sequences of code units they encode.
    _refuse_lone_surrogates(name)
    return name.encode("utf-16-be")


def _refuse_lone_surrogates(text: str) -> None:
    if _LONE_SURROGATE.search(text):
        raise ValueError("a string holds a lone surrogate, which JSON text cannot carry (I-JSON)")


def _string(text: str) -> str:
    _refuse_lone_surrogates(text)
    escaped = _NEEDS_ESCAPE.sub(
        lambda match: _SHORT_ESCAPES.get(match.group(), f"\\u{ord(match.group()):04x}"), text
    )
    return f'"{escaped}"'


def _integer(value: int) -> str:
    if abs(value) > MAX_EXACT_INTEGER:
        raise ValueError(f"{value} is beyond 2**53: no IEEE 754 double holds it exactly")
    return str(value)  # below 10**21, ECMAScript writes an integral number in all its digits


def _number(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"{value} has no JSON form")
    if value == 0:
        return "0"  # and -0 too
    sign = "-" if value < 0 else ""
    # repr gives the shortest digits that round-trip (closest to the value when several do),
    # which is ECMAScript's choice of k and s; only the layout differs.
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + int(exponent or 0)  # value = 0.digits * 10**point
    significant = digits.lstrip("0")
    point -= len(digits) - len(significant)
    digits = significant.rstrip("0")
    k, n = len(digits), point  # ECMAScript's k and n: value = digits * 10**(n - k)
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        body = "0." + "0" * -n + digits
    else:
        e = n - 1
        body = digits[0] + (f".{digits[1:]}" if k > 1 else "") + ("e+" if e >= 0 else "e-")
        body += str(abs(e))
    return sign + body
