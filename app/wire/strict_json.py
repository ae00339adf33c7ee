"""JSON as the exchange reads it from outside: I-JSON (RFC 7493), no deeper than MAX_DEPTH.

Pure: no I/O, no web framework. `loads` refuses, naming the place by JSON Pointer, what
Python's json module would accept but another parser may read otherwise:

- a member name given twice in one object (RFC 7493 section 2.3): Python keeps the last, other
  parsers the first or refuse, so a signed message could name someone other than the one a
  second reader sees;
- a string holding a lone surrogate (an escape such as \\ud800; RFC 7493 section 2.1): it is
  not Unicode, cannot be stored or written as UTF-8;
- NaN and Infinity, which are Python's and not JSON's, and nesting deeper than MAX_DEPTH, or
  deeper than the parser's own stack allows.

The common case costs one C parse, one small call per object and one walk of the containers
(for the example notice, less than the plain parse and node-by-node walk it replaced); the
pointer to a fault is looked for only once a fault is known to be there.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 32  # a notice nests 4 deep; the parsers' own limits depend on the stack
# Only an escape can make a lone surrogate: UTF-8 cannot hold one, and decoding refuses it.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class JsonRefused(ValueError):
    """Why the JSON cannot be taken, and where: a JSON Pointer ("" for the whole document)."""

    def __init__(self, pointer: str, detail: str) -> None:
        super().__init__(f"{pointer or '/'}: {detail}")
        self.pointer, self.detail = pointer, detail


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """The document, or JsonRefused. Bytes must be UTF-8."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        twice: list[tuple[dict[str, Any], str]] = []
        document = json.loads(
            text, object_pairs_hook=_members(twice), parse_constant=_refuse_constant
        )
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError are ValueErrors
        raise JsonRefused("", "is not valid JSON") from None
    if _depth(document) > max_depth:
        raise JsonRefused("", f"nests deeper than {max_depth}")
    if _SURROGATE_ESCAPE.search(text):  # first: a pointer must never hold a lone surrogate
        _refuse_lone_surrogates(document)
    if twice:
        holder, name = twice[0]
        raise JsonRefused(_pointer_to(document, holder) + _token(name), "is a member given twice")
    return document


def _members(twice: list[tuple[dict[str, Any], str]]):
    def build(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        built = dict(pairs)
        if len(built) != len(pairs) and not twice:
            seen: set[str] = set()
            name = next(n for n, _ in pairs if n in seen or seen.add(n))  # type: ignore[func-returns-value]
            twice.append((built, name))
        return built

    return build


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _children(node: object) -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        return [(_token(k), v) for k, v in node.items()]
    if isinstance(node, list):
        return [(f"/{i}", v) for i, v in enumerate(node)]
    return []


def _depth(document: object) -> int:
    """How deeply a parsed JSON document nests: a walk level by level that looks only at
    containers (twice as fast as one that visits every node, and intake pays it)."""
    depth, level = 0, [document] if isinstance(document, dict | list) else []
    while level:
        depth += 1
        below = []
        for node in level:
            for child in node.values() if isinstance(node, dict) else node:
                if isinstance(child, dict | list):
                    below.append(child)
        level = below
    return depth


def _pointer_to(document: object, target: object) -> str:
    """The pointer of the container `target` (by identity) within the document."""
    stack = [("", document)]
    while stack:
        pointer, node = stack.pop()
        if node is target:
            return pointer
        stack.extend((pointer + step, child) for step, child in _children(node))
    return ""  # not reached: target was built while parsing the document


def _refuse_lone_surrogates(document: object) -> None:
    stack = [("", document)]
    while stack:
        pointer, node = stack.pop()
        if isinstance(node, str) and _LONE_SURROGATE.search(node):
            raise JsonRefused(pointer, "holds a lone surrogate, which is not Unicode")
        if isinstance(node, dict):
            for name in node:
                if _LONE_SURROGATE.search(name):
                    raise JsonRefused(pointer, "has a member name holding a lone surrogate")
        stack.extend((pointer + step, child) for step, child in _children(node))


def _token(name: str) -> str:
    """One step of a JSON Pointer (RFC 6901): ~ and / escaped."""
    return "/" + name.replace("~", "~0").replace("/", "~1")
