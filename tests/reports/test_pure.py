"""The reports' pure cores, without a database: suppression (with hypothesis), classification,
grouping, percentiles, timeliness and CSV."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.deadlines.rules import Windows
from app.reports import continuity, grouping, suppression, tables, timeliness
from app.reports.continuity import CATEGORIES, ENGAGED, RELEASED, Release
from app.reports.grouping import Place, percentile
from app.wire.reports import ContinuityBreakdown, ContinuityGroup, ContinuityReport

DAY = date(2026, 3, 2)
PLACE = Place(DAY, "MDI", "SMS-LEEDS")
WINDOWS = Windows()
CLOSED = DAY + timedelta(days=30)  # a today after the window


def names(count: int) -> list[str]:
    return [f"cell{n}" for n in range(count)]


partitions = st.lists(st.integers(min_value=0, max_value=60), min_size=2, max_size=9)


@given(partitions)
def test_no_shown_cell_is_small(values) -> None:
    cells = dict(zip(names(len(values)), values, strict=True))
    total = sum(values)
    hidden = suppression.partition((RELEASED, total), cells)
    shown = suppression.shown({RELEASED: total, **cells}, hidden)
    assert not any(suppression.small(v) for v in shown.values() if v is not None)
    assert all(name in hidden for name, value in cells.items() if suppression.small(value))


@given(partitions)
def test_the_hidden_cells_include_a_large_one_or_the_whole_group_is_hidden(values) -> None:
    """Released minus the shown cells is the hidden cells' sum, each hidden cell is known to be
    at least 1 (0 is shown): with only small cells hidden, k of them summing to k or 4k, or a
    single one, would be recovered exactly."""
    cells = dict(zip(names(len(values)), values, strict=True))
    total = sum(values)
    hidden = suppression.partition((RELEASED, total), cells)
    hidden_cells = [name for name in cells if name in hidden]
    if RELEASED in hidden:
        assert set(hidden) == {RELEASED, *cells}
    elif hidden_cells:
        assert any(cells[name] >= suppression.SMALLEST_SHOWN for name in hidden_cells)
        assert len(hidden_cells) >= 2


@given(partitions)
def test_the_shown_and_hidden_cells_add_up_to_released(values) -> None:
    cells = dict(zip(names(len(values)), values, strict=True))
    total = sum(values)
    hidden = suppression.partition((RELEASED, total), cells)
    shown = suppression.shown({RELEASED: total, **cells}, hidden)
    assert set(hidden) <= {RELEASED, *cells}
    shown_sum = sum(value for name, value in shown.items() if name != RELEASED and value)
    hidden_sum = sum(cells[name] for name in cells if name in hidden)
    assert shown_sum + hidden_sum == total
    if RELEASED not in hidden:
        assert shown[RELEASED] == total


@given(st.lists(st.integers(min_value=0, max_value=40), min_size=9, max_size=9))
def test_continuity_groups_never_give_a_small_count_away(values) -> None:
    """Through the continuity report's own publishing: the rate goes with released or engaged."""
    cells = dict(zip((ENGAGED, *CATEGORIES), values, strict=True))
    group = continuity._published("G", cells, provisional=False)
    published = [group.released, group.engaged, *group.breakdown.values()]
    assert not any(suppression.small(v) for v in published if v is not None)
    if group.released is None or group.engaged is None:
        assert group.rate is None and "rate" in group.suppressed
    hidden = [cells[name] for name in (ENGAGED, *CATEGORIES) if name in group.suppressed]
    if hidden and group.released is not None:
        assert any(value >= suppression.SMALLEST_SHOWN for value in hidden)


def test_secondary_suppression_takes_the_smallest_other_non_zero_cell() -> None:
    cells = {"a": 9, "b": 2, "c": 0, "d": 6, "e": 6}
    assert suppression.partition(("total", 23), cells) == {"b", "d"}
    assert suppression.partition(("total", 3), {"a": 3, "b": 0}) == {"total", "a", "b"}
    assert suppression.partition(("total", 0), {"a": 0}) == frozenset()
    assert suppression.partition(("total", 20), {"a": 20, "b": 0}) == frozenset()


def test_several_small_cells_are_covered_by_a_large_one() -> None:
    # 11 engaged, 1 and 1: released 13 would show the two hidden cells sum to 2, so each is 1
    cells = {"engaged": 11, "did_not_attend": 1, "declined": 1, "no_consent": 0}
    assert suppression.partition(("released", 13), cells) == {
        "engaged",
        "did_not_attend",
        "declined",
    }
    cells = {"a": 4, "b": 4, "c": 7, "d": 5}
    assert suppression.partition(("total", 20), cells) == {"a", "b", "d"}


def test_small_cells_with_no_large_one_hide_the_whole_group() -> None:
    everything = {"total", "a", "b", "c"}
    assert suppression.partition(("total", 5), {"a": 2, "b": 3, "c": 0}) == everything
    assert suppression.partition(("total", 8), {"a": 4, "b": 4, "c": 0}) == everything


def test_a_group_with_two_single_cells_is_not_given_away() -> None:
    cells = dict.fromkeys((ENGAGED, *CATEGORIES), 0) | {
        ENGAGED: 11,
        "did_not_attend": 1,
        "declined": 1,
    }
    group = continuity._published("G", cells, provisional=False)
    assert group.released == 13 and group.engaged is None and group.rate is None
    assert group.suppressed == (ENGAGED, "did_not_attend", "declined", "rate")
    cells = dict.fromkeys((ENGAGED, *CATEGORIES), 0) | {ENGAGED: 3, "declined": 4}
    group = continuity._published("G", cells, provisional=False)
    assert group.released is None and group.rate is None
    assert set(group.breakdown.values()) == {None}


@pytest.mark.parametrize(
    ("numerator", "denominator", "share"),
    [
        (0, 5, 0.0),
        (5, 7, None),
        (5, 10, 0.5),
        (2, 10, None),
        (5, 3, None),
        (0, 0, None),
        (8, 15, 0.533),
        (12, 15, None),
        (15, 15, 1.0),
    ],
)
def test_a_share_is_withheld_when_a_side_or_its_complement_is_small(
    numerator, denominator, share
) -> None:
    assert suppression.share(numerator, denominator) == share
    assert suppression.withheld(numerator, denominator) == (share is None and denominator > 0)


def release(**what) -> Release:
    return Release(place=PLACE, message_stands=what.pop("stands", True), **what)


@pytest.mark.parametrize(
    ("release_", "today", "category"),
    [
        (release(first_attended=DAY + timedelta(days=21)), CLOSED, ENGAGED),
        (release(first_attended=DAY), DAY, ENGAGED),
        (release(first_attended=DAY + timedelta(days=21), stands=False), CLOSED, ENGAGED),
        (release(stands=False), DAY, "no_consent"),
        (release(), DAY + timedelta(days=21), "still_in_window"),
        (release(), DAY + timedelta(days=22), "no_acknowledgement"),
        (release(latest_status="received"), CLOSED, "received_no_appointment"),
        (release(latest_status="accepted"), CLOSED, "received_no_appointment"),
        (release(latest_status="escalated"), CLOSED, "received_no_appointment"),
        (
            release(
                latest_status="attended",
                latest_date=DAY + timedelta(days=22),
                first_attended=DAY + timedelta(days=22),
            ),
            CLOSED,
            "appointment_outside_window",
        ),
        (
            release(latest_status="appointment_booked", latest_date=DAY + timedelta(days=22)),
            CLOSED,
            "appointment_outside_window",
        ),
        (
            release(latest_status="appointment_booked", latest_date=DAY + timedelta(days=21)),
            CLOSED,
            "appointment_not_recorded",
        ),
        (release(latest_status="did_not_attend", latest_date=DAY), CLOSED, "did_not_attend"),
        (release(latest_status="declined"), CLOSED, "declined"),
    ],
)
def test_each_release_has_one_category(release_, today, category) -> None:
    assert continuity.classify(release_, WINDOWS, today) == category


def test_groups_count_rate_and_provisional() -> None:
    engaged = [release(first_attended=DAY + timedelta(days=1))] * 8
    unanswered = [release()] * 7
    other = Release(Place(DAY + timedelta(days=40), "LPI", "SMS-LEEDS"), True)
    groups = continuity.tally([*engaged, *unanswered, other], WINDOWS, today=CLOSED, by="month")
    march, april = groups
    assert (march.key, march.released, march.engaged, march.rate) == ("2026-03", 15, 8, 0.533)
    assert march.breakdown["no_acknowledgement"] == 7 and march.suppressed == ()
    assert not march.provisional
    assert april.key == "2026-04" and april.provisional and april.released is None
    assert [
        g.key for g in continuity.tally([other, *engaged], WINDOWS, today=CLOSED, by="prison")
    ] == [
        "LPI",
        "MDI",
    ]


def test_ranges_and_percentiles() -> None:
    assert grouping.problem(date(2026, 2, 1), date(2026, 1, 31))[0] == "to"
    assert grouping.problem(date(2020, 2, 29), date(2025, 2, 28)) is None
    assert grouping.problem(date(2020, 2, 29), date(2025, 3, 1)) is not None
    assert percentile([], 0.5) is None
    assert percentile([3.0], 0.9) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([float(n) for n in range(1, 11)], 0.9) == pytest.approx(9.1)


def test_timeliness_receipt_and_first_appointment() -> None:
    created = datetime(2026, 3, 2, 9, tzinfo=UTC)  # a Monday: due by the end of Tuesday
    now = datetime(2026, 4, 30, tzinfo=UTC)
    sent = [
        timeliness.Sent(
            PLACE,
            "substance_misuse_service",
            created,
            created + timedelta(hours=h),
            True,
            first_appointment=DAY + timedelta(days=d),
            first_attended=DAY + timedelta(days=d),
        )
        for h, d in ((1, 2), (2, 4), (3, 6), (50, 8), (60, 30))
    ]
    sent += [timeliness.Sent(PLACE, "probation_provider", created, None, True)] * 5
    probation, service = timeliness.tally(sent, WINDOWS, now=now, today=now.date(), by="service")
    assert service.receipt == {
        "count": 5,
        "median_hours": 3.0,
        "p90_hours": 56.0,
        "share_overdue": None,
    }
    assert "receipt.share_overdue" in service.suppressed  # 2 of 5 overdue: small numerator
    assert service.first_appointment["median_days"] == 6.0
    assert service.first_appointment["share_overdue"] is None  # 1 of 5 not engaged in time
    assert probation.receipt == {
        "count": 0,
        "median_hours": None,
        "p90_hours": None,
        "share_overdue": 1.0,
    }
    assert probation.first_appointment["share_overdue"] is None


def test_csv_marks_suppressed_cells() -> None:
    groups = continuity.tally([release()] * 3, WINDOWS, today=CLOSED, by="month")
    report = ContinuityReport(
        from_=DAY,
        to=DAY,
        by="month",
        window_days=21,
        generated_at=datetime.now(UTC),
        definition="d",
        groups=[
            ContinuityGroup(
                group=g.key,
                released=g.released,
                engaged_within_21_days=g.engaged,
                rate=g.rate,
                breakdown=ContinuityBreakdown(**g.breakdown),
                provisional=g.provisional,
                suppressed=list(g.suppressed),
            )
            for g in groups
        ],
    )
    header, row = tables.continuity_csv(report).splitlines()
    assert header.startswith("group,released,engaged_within_21_days,rate,no_consent,")
    assert row == "2026-03," + ",".join(["[c]"] * 11) + ",false"
