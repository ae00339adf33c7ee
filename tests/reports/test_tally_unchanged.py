"""The tallies give the figures they gave before they were made faster (issue 24 item 6): each
compared, over many generated releases and messages, with the plain loop it replaced, kept
here as the reference (every release classified as continuity.classify did; every message's
receipt deadline worked out on its own)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from app.deadlines.calendar import end_of
from app.deadlines.rules import Windows
from app.reports import continuity, timeliness
from app.reports.continuity import CATEGORIES, ENGAGED, Release
from app.reports.grouping import BY, Place
from app.reports.timeliness import KINDS, Sent

WINDOWS = Windows()
FIRST = date(2025, 12, 20)  # the year's end, its bank holidays and the clocks' changes inside
TODAY = FIRST + timedelta(days=120)
NOW = datetime.combine(TODAY, datetime.min.time(), UTC) + timedelta(hours=11)
STATUSES = (None, "received", "accepted", "appointment_booked", "attended", "did_not_attend",
            "declined", "a_status_added_later")  # fmt: skip

EDGE = (TODAY - FIRST).days - WINDOWS.engagement_days  # a release whose window ends today
days = (st.integers(min_value=0, max_value=110) | st.sampled_from((EDGE - 1, EDGE, EDGE + 1))).map(
    lambda n: FIRST + timedelta(days=n)
)
offsets = st.none() | st.integers(min_value=-3, max_value=40)
places = st.builds(Place, days, st.sampled_from(("LPI", "MDI")), st.sampled_from(("S1", "S2")))


def _on(place: Place, offset: int | None) -> date | None:
    return None if offset is None else place.release_date + timedelta(days=offset)


@st.composite
def releases(draw) -> Release:
    place = draw(places)
    status = draw(st.sampled_from(STATUSES))
    on, attended = _on(place, draw(offsets)), _on(place, draw(offsets))
    return Release(place, draw(st.booleans()), status, on, attended)


@st.composite
def messages(draw) -> Sent:
    place = draw(places)
    created = datetime.combine(place.release_date, datetime.min.time(), UTC) + timedelta(
        minutes=draw(st.integers(min_value=-2880, max_value=2880))
    )
    hours = draw(st.none() | st.integers(min_value=0, max_value=200))
    acknowledged = None if hours is None else created + timedelta(hours=hours)
    first, attended = _on(place, draw(offsets)), _on(place, draw(offsets))
    kind = draw(st.sampled_from((*KINDS, "another_kind")))
    return Sent(place, kind, created, acknowledged, draw(st.booleans()), first, attended)


def classify_before(release: Release) -> str:
    day, attended = release.place.release_date, release.first_attended
    if attended is not None and WINDOWS.engaged_in_window(attended, day):
        return ENGAGED
    if not release.message_stands:
        return "no_consent"
    if WINDOWS.engagement_due(day) >= TODAY:
        return "still_in_window"
    status, on = release.latest_status, release.latest_date
    if status is None:
        return "no_acknowledgement"
    if status in continuity.APPOINTMENTS:
        inside = on is not None and WINDOWS.engaged_in_window(on, day)
        return (
            "appointment_not_recorded"
            if inside and status != "attended"
            else ("appointment_outside_window")
        )
    if status in ("did_not_attend", "declined"):
        return status
    return "received_no_appointment"


def continuity_before(read: list[Release], by: str) -> list[continuity.Group]:
    counts: dict[str, dict[str, int]] = {}
    provisional: dict[str, bool] = {}
    for release in read:
        key = release.place.key(by)
        cells = counts.setdefault(key, dict.fromkeys((ENGAGED, *CATEGORIES), 0))
        cells[classify_before(release)] += 1
        still_open = WINDOWS.engagement_due(release.place.release_date) >= TODAY
        provisional[key] = provisional.get(key, False) or still_open
    return [continuity._published(k, counts[k], provisional[k]) for k in sorted(counts)]


def timeliness_before(sent: list[Sent], by: str) -> list[timeliness.Row]:
    tallies: dict[str, dict[str, timeliness._Tally]] = {}
    for message in sent:
        group = tallies.setdefault(message.place.key(by), {k: timeliness._Tally() for k in KINDS})
        deadline = end_of(WINDOWS.receipt_due(message.created_at))
        timeliness._add(
            group.setdefault(message.kind, timeliness._Tally()),
            message,
            deadline=deadline,
            windows=WINDOWS,
            now=NOW,
            today=TODAY,
        )
    return [
        timeliness._row(k, kind, tallies[k][kind]) for k in sorted(tallies) for kind in tallies[k]
    ]


@settings(max_examples=60, deadline=None)
@given(st.lists(releases(), max_size=120), st.sampled_from(BY))
def test_the_continuity_tally_is_unchanged(read, by) -> None:
    assert continuity.tally(read, WINDOWS, today=TODAY, by=by) == continuity_before(read, by)


@settings(max_examples=60, deadline=None)
@given(st.lists(messages(), max_size=120), st.sampled_from(BY))
def test_the_timeliness_tally_is_unchanged(sent, by) -> None:
    found = timeliness.tally(sent, WINDOWS, now=NOW, today=TODAY, by=by)
    assert found == timeliness_before(sent, by)
