"""What every wire format is built from: the base models, and the types requests are read with.

Each check a request's text or time needs is made here, once, for every route that uses the type:

- A request body is strict (`RequestBody`): a number is never read from a boolean or a float,
  nor a string from a number. UUIDs and times come as text, as the contract says; a time is
  never read from a number (pydantic would take one as seconds since 1970).
- Text never holds a control character where it cannot belong: a name or identifier
  (`one_line`) holds none, free text (`plain_text`) only tab and line breaks. Neither holds NUL,
  which PostgreSQL cannot store and SQLite would, so both databases answer alike. They are
  patterns, so the published contract says so too, and pydantic checks them without Python.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Strict,
    StringConstraints,
)

# No C0 control, DEL or C1 control: one line of text, as a name or an identifier is.
ONE_LINE = r"^[^\x00-\x1f\x7f-\x9f]*$"
# The same, but tab, line feed and carriage return are allowed: free text.
PLAIN_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
# What a failed pattern means, in the exchange's words (app/api/problems.py uses them).
PATTERN_WORDS = {
    ONE_LINE: "must be one line of text, without control characters",
    PLAIN_TEXT: "must be plain text: no control characters but tab and line breaks",
}


_ONE_LINE_OR_SURROGATE = re.compile(r"[^\x00-\x1f\x7f-\x9f\ud800-\udfff]*")


def is_one_line(text: str) -> bool:
    """ONE_LINE for text that reaches the database without a model (a token's claims, say):
    and no lone surrogate, which pydantic refuses for itself but Python's json module makes."""
    return _ONE_LINE_OR_SURROGATE.fullmatch(text) is not None


def one_line(max_length: int, min_length: int = 1) -> Any:
    """A name or an identifier: one line, no control characters."""
    return Annotated[
        str,
        StringConstraints(
            strict=True, min_length=min_length, max_length=max_length, pattern=ONE_LINE
        ),
    ]


def plain_text(max_length: int, min_length: int = 1) -> Any:
    """Free text: no control characters but tab and line breaks."""
    return Annotated[
        str,
        StringConstraints(
            strict=True, min_length=min_length, max_length=max_length, pattern=PLAIN_TEXT
        ),
    ]


class Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RequestBody(Wire):
    """A request body: unknown members refused, and every member strictly of its type."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None


def as_text(kind: str, pattern: str) -> BeforeValidator:
    """Dates and times come as ISO 8601 text, as the published schema says: never a number,
    which pydantic would otherwise read as a unix time."""
    shape = re.compile(pattern)

    def check(value: object) -> object:
        if isinstance(value, str) and not shape.match(value):
            raise ValueError(f"must be {kind}")
        if not isinstance(value, str | date):  # a date or datetime only from Python itself
            raise ValueError(f"must be {kind}, as text")
        return value

    return BeforeValidator(check)


# A point in time with its offset, held in UTC; one that cannot be is a validation error.
UtcInstant = Annotated[AwareDatetime, AfterValidator(_in_utc)]
# The same as a request gives it, in a body or a query: RFC 3339 text, never a number.
Instant = Annotated[
    UtcInstant, Strict(False), as_text("a time, with its offset", r"^\d{4}-\d{2}-\d{2}T")
]
# A day as a request gives it: ISO 8601 text, YYYY-MM-DD.
IsoDate = Annotated[date, Strict(False), as_text("a date, YYYY-MM-DD", r"^\d{4}-\d{2}-\d{2}$")]
# The consent scopes a person can give, refuse and withdraw: the one list of them, used by the
# notice's `consent` items, the consent API and the policy files' checks.
ConsentScope = Literal[
    "substance_misuse_service", "probation_clinical_details", "treatment_to_probation"
]
CONSENT_SCOPES_SAID = (
    "`substance_misuse_service`: share with the community treatment service. "
    "`probation_clinical_details`: share clinical detail of the notice with probation. "
    "`treatment_to_probation`: the treatment service shares, in its care updates, clinical "
    "notes and detail beyond engagement with probation."
)
# A UUID as a request body gives it: text (a strict model would take only a Python UUID).
Uuid = Annotated[uuid.UUID, Strict(False)]
