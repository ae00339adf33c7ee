"""JSON documents by pointer, independent of the app: for checking what a decision sent."""

from __future__ import annotations

from typing import Any


def leaves(node: Any, pointer: str = "") -> dict[str, Any]:
    """Every leaf of a JSON document by pointer; arrays and empty objects are leaves."""
    if isinstance(node, dict) and node:
        return {p: v for k, sub in node.items() for p, v in leaves(sub, f"{pointer}/{k}").items()}
    return {pointer: node}


def under(pointer: str, prefix: str) -> bool:
    return pointer == prefix or pointer.startswith(prefix + "/")
