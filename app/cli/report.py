"""`exchange report ...`: the reports, for operators on the server (every release, no prison
filter), as CSV or as the API's JSON body. One transaction per command."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer

from app.reports import grouping, reporting, tables
from app.settings import Settings
from app.storage.db import make_engine, make_sessionmaker

report_cli = typer.Typer(
    no_args_is_help=True, help="Reports: aggregates, small numbers suppressed."
)


class Format(StrEnum):
    csv = "csv"
    json = "json"


class GroupBy(StrEnum):
    prison = "prison"
    service = "service"
    month = "month"


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter("must be a date, YYYY-MM-DD") from None


From = Annotated[str, typer.Option("--from", help="The first release date counted, YYYY-MM-DD.")]
To = Annotated[str, typer.Option("--to", help="The last release date counted, YYYY-MM-DD.")]
By = Annotated[GroupBy, typer.Option(help="Group by prison, service or month.")]
Output = Annotated[Format, typer.Option("--format", help="csv (suppressed as [c]) or json.")]
Report = Callable[..., Awaitable[Any]]  # reporting.continuity_of_care or timeliness_of


def _run(report: Report, start: str, end: str, *, by: GroupBy) -> Any:
    asked = grouping.Asked(_day(start), _day(end), by.value)
    wrong = grouping.problem(asked.start, asked.end)
    if wrong is not None:
        typer.echo(f"error: --{wrong[0]} {wrong[1]}", err=True)
        raise typer.Exit(2)
    settings = Settings()

    async def run() -> Any:
        engine = make_engine(settings.database_url, **settings.database_timeouts(statements=False))
        try:
            async with make_sessionmaker(engine)() as session, session.begin():
                return await report(session, asked, windows=settings.windows, now=datetime.now(UTC))
        finally:
            await engine.dispose()

    return asyncio.run(run())


@report_cli.command("continuity-of-care")
def continuity_of_care(
    *, start: From, end: To, by: By = GroupBy.month, output: Output = Format.csv
) -> None:
    """The continuity-of-care measure (README, "Reports") per group of releases."""
    report = _run(reporting.continuity_of_care, start, end, by=by)
    text = tables.continuity_csv(report) if output is Format.csv else _json(report)
    sys.stdout.write(text)


@report_cli.command("timeliness")
def timeliness(
    *, start: From, end: To, by: By = GroupBy.month, output: Output = Format.csv
) -> None:
    """Receipt and first-appointment times per group of releases and kind of recipient."""
    report = _run(reporting.timeliness_of, start, end, by=by)
    text = tables.timeliness_csv(report) if output is Format.csv else _json(report)
    sys.stdout.write(text)


def _json(report: Any) -> str:
    return report.model_dump_json(by_alias=True, indent=2) + "\n"
