"""The canonical example release notice (schemas/examples/), with its dates moved to a given day.

Intake refuses release dates far from the day a notice arrives, so an example written on one
day cannot be posted months later as it stands. Moving every date and time by the same number of
days keeps the example true to itself (the same ages, the same gaps) and postable on any day.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from typing import Any

from app.settings import PROJECT_ROOT

EXAMPLE = PROJECT_ROOT / "schemas" / "examples" / "release-notice.json"
WRITTEN_ON = date(2026, 11, 22)  # the day the example's dates are true for
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def moved(value: Any, by: timedelta) -> Any:
    """A JSON value with every ISO date and UTC time in it moved by `by`."""
    if isinstance(value, dict):
        return {k: moved(v, by) for k, v in value.items()}
    if isinstance(value, list):
        return [moved(v, by) for v in value]
    if isinstance(value, str) and DATE.match(value):
        return (date.fromisoformat(value) + by).isoformat()
    if isinstance(value, str) and INSTANT.match(value):
        return (datetime.fromisoformat(value) + by).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def release_notice(today: date | None = None) -> dict[str, Any]:
    """The example as written, or as if written `today`."""
    example = json.loads(EXAMPLE.read_text())
    return example if today is None else moved(example, today - WRITTEN_ON)
