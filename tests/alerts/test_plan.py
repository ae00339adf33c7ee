"""The overdue scan's planner (app/alerts/plan.py) without a database: who is told of each
deadline passed, what an event says (ids, codes and days only), and that a deadline whose
message no longer stands, or that was met after all, tells nobody."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.alerts.plan import Due, plan_alerts

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # a fixed instant: the planner has no clock


@dataclass(frozen=True)
class Org:
    id: uuid.UUID
    code: str
    kind: str


SMS = Org(uuid.uuid4(), "SMS-LEEDS", "substance_misuse_service")
N07 = Org(uuid.uuid4(), "N07", "probation_provider")
MDI = Org(uuid.uuid4(), "MDI", "prison")


def due(kind: str, owner: Org = SMS, **changes) -> Due:
    found = Due(
        id=uuid.uuid4(),
        kind=kind,
        message_id=uuid.uuid4(),
        notice_id=uuid.uuid4(),
        series_id=uuid.uuid4(),
        owner=owner,
        due_on=date(2026, 12, 4),
        stopped=None,
        met=False,
        prison=MDI,
        probation=N07,
        person_ref="p" * 64,
        missed_on=date(2026, 12, 3) if kind == "at_risk" else None,
    )
    return replace(found, **changes)


@pytest.mark.parametrize(
    ("deadline", "told"),
    [
        (due("receipt", N07), ["N07", "MDI"]),
        (due("receipt", SMS), ["SMS-LEEDS", "MDI"]),
        (due("engagement"), ["SMS-LEEDS", "N07"]),
        (due("engagement", probation=None), ["SMS-LEEDS"]),  # no disclosure of it stands at N07
        (due("at_risk"), ["N07"]),
        (due("at_risk", probation=None), []),
    ],
)
def test_who_is_told(deadline: Due, told: list[str]) -> None:
    plan = plan_alerts([deadline], now=NOW)
    assert [s.organisation.code for s in plan.to_sign] == told
    assert plan.alerted == (deadline.id,) and plan.met == () and plan.stopped == ()
    (entry,) = plan.entries
    assert entry.action == "deadline.overdue" and entry.details["told"] == told
    assert entry.person_ref == "p" * 64 and entry.subject_organisation_id == deadline.owner.id


def test_an_event_carries_ids_codes_and_days_only() -> None:
    deadline = due("at_risk")
    (event,) = plan_alerts([deadline], now=NOW).to_sign
    assert event.kind == "engagement_at_risk" and event.notice_id == deadline.notice_id
    assert event.claims == {
        "deadline": {
            "id": str(deadline.id),
            "kind": "at_risk",
            "due_on": "2026-12-04",
            "owed_by": "SMS-LEEDS",
        },
        "concerning": str(deadline.message_id),
        "series_id": str(deadline.series_id),
        "missed_appointment_date": "2026-12-03",
    }


@given(
    kinds=st.lists(st.sampled_from(["receipt", "engagement", "at_risk"]), max_size=8),
    stopped=st.lists(st.sampled_from([None, "cancelled", "withdrawn", "superseded"]), min_size=8),
    met=st.lists(st.booleans(), min_size=8),
)
def test_each_deadline_is_stopped_met_or_alerted_once(kinds, stopped, met) -> None:
    batch = [due(k, stopped=s, met=m) for k, s, m in zip(kinds, stopped, met, strict=False)]
    plan = plan_alerts(batch, now=NOW)
    looked = [*plan.alerted, *plan.met, *(i for i, _ in plan.stopped)]
    assert sorted(looked) == sorted(d.id for d in batch)
    alerted = {d.id for d in batch if d.stopped is None and not d.met}
    assert set(plan.alerted) == alerted
    assert {s.claims["deadline"]["id"] for s in plan.to_sign} <= {str(i) for i in alerted}
    for s in plan.to_sign:
        assert set(s.claims) <= {"deadline", "concerning", "series_id", "missed_appointment_date"}
    assert len({s.message_id for s in plan.to_sign}) == len(plan.to_sign)
