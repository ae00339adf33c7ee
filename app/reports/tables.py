"""The reports as CSV (pure): a header row, then a row per group (per group and kind of
recipient for timeliness), the breakdown as columns. A suppressed cell is `[c]`, as the GSS
convention writes it; a figure that is undefined (a rate of nothing released, a median of no
values) is left empty."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from app.wire.reports import ContinuityBreakdown, ContinuityReport, TimelinessReport

SUPPRESSED = "[c]"


def _cell(value: Any, name: str, suppressed: Sequence[str]) -> str:
    if name in suppressed:
        return SUPPRESSED
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _csv(rows: Iterable[Sequence[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def continuity_csv(report: ContinuityReport) -> str:
    categories = list(ContinuityBreakdown.model_fields)
    header = ["group", "released", "engaged_within_21_days", "rate", *categories, "provisional"]
    rows = []
    for group in report.groups:
        values = {
            "group": group.group,
            "released": group.released,
            "engaged_within_21_days": group.engaged_within_21_days,
            "rate": group.rate,
            **group.breakdown.model_dump(),
            "provisional": group.provisional,
        }
        rows.append([_cell(values[name], name, group.suppressed) for name in header])
    return _csv([header, *rows])


def timeliness_csv(report: TimelinessReport) -> str:
    header = ["group", "recipient_kind"]
    header += [f"receipt_{n}" for n in ("count", "median_hours", "p90_hours", "share_overdue")]
    header += [
        f"first_appointment_{n}" for n in ("count", "median_days", "p90_days", "share_overdue")
    ]
    rows = []
    for row in report.rows:
        cells = [row.group, row.recipient_kind]
        for part, figures in (
            ("receipt", row.receipt),
            ("first_appointment", row.first_appointment),
        ):
            for name, value in figures.model_dump().items():
                cells.append(_cell(value, f"{part}.{name}", row.suppressed))
        rows.append(cells)
    return _csv([header, *rows])
