"""The reports as their readers get them, on both databases: who may read what, the
parameters' problems, suppression and provisional groups in the body, the statement count, the
timeliness report's rows and the command line's CSV."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import timedelta

import pytest

from tests.helpers.problems import assert_problem
from tests.helpers.reports import CONTINUITY, TIMELINESS, release, report, service_says
from tests.helpers.statements import statements


def span(clock, back: int = 30) -> dict[str, str]:
    return {"from": (clock.today - timedelta(days=back)).isoformat(), "to": clock.today.isoformat()}


async def test_a_prison_sees_its_own_releases_and_recipients_none(world, example, clock):
    closed = clock.today - timedelta(days=25)
    for code in ("MDI", "LPI"):
        await release(world, example, closed, code)
    for path in (CONTINUITY, TIMELINESS):
        for code, groups in (("MDI", ["MDI"]), ("LPI", ["LPI"]), ("AUDIT", ["LPI", "MDI"])):
            body = (await report(world, code, path, by="prison", **span(clock))).json()
            rows = body["groups"] if path == CONTINUITY else body["rows"]
            assert sorted({r["group"] for r in rows}) == groups, (path, code)
        assert (await report(world, "OPS", path, **span(clock))).status_code == 200
        for code in ("N07", "SMS-LEEDS"):
            problem = assert_problem(await report(world, code, path, **span(clock)), 403)
            assert "reports:read" in problem["detail"]


@pytest.mark.parametrize(
    ("query", "pointer"),
    [
        ({"to": "2026-01-01"}, "/from"),
        ({"from": "2026-01-01"}, "/to"),
        ({"from": "2026-02-01", "to": "2026-01-31"}, "/to"),
        ({"from": "2020-01-01", "to": "2025-01-02"}, "/to"),
        ({"from": "2026-1-1", "to": "2026-01-02"}, "/from"),
        ({"from": "2026-01-01", "to": "2026-01-02", "by": "region"}, "/by"),
    ],
)
async def test_a_bad_parameter_is_a_422_naming_it(world, query, pointer):
    for path in (CONTINUITY, TIMELINESS):
        problem = assert_problem(await report(world, "AUDIT", path, **query), 422)
        assert [e["pointer"] for e in problem["errors"]] == [pointer]


async def test_five_years_are_answered(world):
    body = (await report(world, "AUDIT", **{"from": "2020-01-01", "to": "2025-01-01"})).json()
    assert (body["from"], body["to"], body["by"], body["groups"]) == (
        "2020-01-01",
        "2025-01-01",
        "month",
        [],
    )


async def test_small_groups_are_suppressed_and_open_windows_provisional(world, example, clock):
    closed = clock.today - timedelta(days=25)
    for _ in range(3):  # MDI: 3 releases, all suppressed
        await release(world, example, closed, "MDI")
    for n in range(12):  # LPI: 5 engaged, 5 unanswered, 2 declined: engaged goes with declined
        accepted = await release(world, example, closed, "LPI")
        if n < 5:
            await service_says(world, accepted, "attended", closed + timedelta(days=3))
        elif n < 7:
            await service_says(world, accepted, "declined")
    body = (await report(world, "AUDIT", by="prison", **span(clock))).json()
    assert body["window_days"] == 21 and body["definition"]
    lpi, mdi = body["groups"]
    assert mdi["group"] == "MDI" and mdi["released"] is None and mdi["rate"] is None
    assert set(mdi["breakdown"].values()) == {None}
    assert set(mdi["suppressed"]) == {
        "released",
        "engaged_within_21_days",
        "rate",
        *mdi["breakdown"],
    }
    assert lpi["released"] == 12 and lpi["engaged_within_21_days"] is None
    assert lpi["suppressed"] == ["engaged_within_21_days", "declined", "rate"]
    assert lpi["breakdown"]["no_acknowledgement"] == 5 and lpi["breakdown"]["declined"] is None
    assert lpi["breakdown"]["still_in_window"] == 0 and lpi["rate"] is None
    assert not lpi["provisional"] and not mdi["provisional"]
    for _ in range(5):  # LPI: 5 more, inside their window
        await release(world, example, clock.today - timedelta(days=1), "LPI")
    body = (await report(world, "AUDIT", by="prison", **span(clock))).json()
    lpi = body["groups"][0]
    assert lpi["provisional"] and lpi["breakdown"]["still_in_window"] == 5


async def test_a_report_is_a_fixed_number_of_statements(app, world, example, clock):
    closed = clock.today - timedelta(days=25)
    counted = []
    for _ in range(2):
        for _ in range(3):
            accepted = await release(world, example, closed)
            await service_says(world, accepted, "attended", closed + timedelta(days=1))
        for path in (CONTINUITY, TIMELINESS):
            await report(world, "AUDIT", path, **span(clock))  # the token, first
            with statements(app) as seen:
                assert (await report(world, "AUDIT", path, **span(clock))).status_code == 200
            counted.append(len([s for s in seen if "release_notice" in s]))
    assert counted == [1, 1, 1, 1]


async def test_timeliness_rows_per_kind_of_recipient(world, example, clock):
    closed = clock.today - timedelta(days=25)
    for _ in range(5):
        accepted = await release(world, example, closed)
        await service_says(world, accepted, "appointment_booked", closed + timedelta(days=4))
    body = (await report(world, "AUDIT", TIMELINESS, by="service", **span(clock))).json()
    probation, service = body["rows"]
    assert (probation["group"], probation["recipient_kind"]) == ("SMS-LEEDS", "probation_provider")
    assert probation["receipt"] == {
        "count": 0,
        "median_hours": None,
        "p90_hours": None,
        "share_overdue": None,
    }
    assert probation["first_appointment"]["share_overdue"] is None
    assert service["receipt"]["count"] == 5 and service["receipt"]["share_overdue"] == 0.0
    assert service["first_appointment"] == {
        "count": 5,
        "median_days": 4.0,
        "p90_days": 4.0,
        "share_overdue": 1.0,
    }
    assert service["suppressed"] == [] and probation["suppressed"] == []


async def test_the_command_line_writes_csv_and_the_apis_json(world, example, clock, run):
    closed = clock.today - timedelta(days=25)
    for n in range(12):  # 5 engaged, 5 unanswered, 2 declined
        accepted = await release(world, example, closed)
        if n < 5:
            await service_says(world, accepted, "attended", closed + timedelta(days=3))
        elif n < 7:
            await service_says(world, accepted, "declined")
    dates = span(clock)
    args = ["--from", dates["from"], "--to", dates["to"], "--by", "service"]
    answer = await asyncio.to_thread(run, "report", "continuity-of-care", *args, "--format", "csv")
    assert answer.exit_code == 0, answer.stderr
    [row] = list(csv.DictReader(io.StringIO(answer.stdout)))
    assert row["group"] == "SMS-LEEDS" and row["released"] == "12"
    assert row["engaged_within_21_days"] == row["rate"] == row["declined"] == "[c]"
    assert row["no_acknowledgement"] == "5" and row["provisional"] == "false"
    assert row["no_consent"] == "0"
    answer = await asyncio.to_thread(run, "report", "continuity-of-care", *args, "--format", "json")
    served = (await report(world, "AUDIT", by="service", **dates)).json()
    printed = json.loads(answer.stdout)
    assert printed["groups"] == served["groups"] and printed["from"] == dates["from"]
    answer = await asyncio.to_thread(run, "report", "timeliness", *args)
    assert answer.exit_code == 0, answer.stderr
    rows = list(csv.DictReader(io.StringIO(answer.stdout)))
    assert [r["recipient_kind"] for r in rows] == ["probation_provider", "substance_misuse_service"]
    refused = await asyncio.to_thread(
        run, "report", "timeliness", "--from", "2026-02-01", "--to", "2026-01-01"
    )
    assert refused.exit_code == 2 and "--to" in refused.stderr
