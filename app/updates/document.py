"""The care update, version 1: what one recipient of a release tells the other about the person.

This model is the source of `schemas/care-update.v1.json`. A substance misuse service tells the
probation provider how the person engages with treatment (events with their days, an exit with
its reason), what its assessment found of their NPS use, the safeguarding answers (always
answered, as in the notice) and a clinical note; a probation provider tells the service what
changes its work: accommodation, a licence condition or requirement about drug appointments,
risk to staff, and a recall or return to custody, which closes the release's thread. Which
sections each may send is `SECTIONS`; what reaches the other is the policy's
(consent/care-update.yaml). Every object refuses unknown members and every code is enumerated.
`implausible()` adds what needs the release date and the day: no date before the release or
after today; no section null, no engagement event repeated on one day, no NPS family twice.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from app.notices.document import NpsCategory, Safeguarding
from app.wire.base import IsoDate, plain_text

LongText = plain_text(4000)
Day = IsoDate  # for members named `date`, whose name would hide the type

PROBATION, SERVICE = "probation_provider", "substance_misuse_service"
EXITED = "exited"
ATTENDED = "attended"
EVENTS = (
    "assessed",
    "treatment_started",
    ATTENDED,
    "did_not_attend",
    "disengaged",
    "re_engaged",
    EXITED,
)
# Modelled on the national treatment monitoring (NDTMS) discharge reasons.
EXIT_REASONS = (
    "completed_drug_free",
    "completed",
    "referred_on",
    "dropped_out",
    "returned_to_prison",
    "treatment_declined",
    "moved_away",
    "died",
    "not_known",
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class EngagementEvent(Strict):
    event: Literal[EVENTS] = Field(  # type: ignore[valid-type]
        description="`assessed`, `treatment_started`, `attended` (an appointment: it counts "
        "towards continuity of care as an `attended` acknowledgement does), `did_not_attend`, "
        "`disengaged`, `re_engaged`, or `exited` (with `exit_reason`)."
    )
    date: Day = Field(description="The day it happened: not before the release, nor after today.")
    exit_reason: Literal[EXIT_REASONS] | None = Field(  # type: ignore[valid-type]
        default=None,
        description="Required with `exited`, and only then: `completed_drug_free`, "
        "`completed`, `referred_on`, `dropped_out`, `returned_to_prison`, "
        "`treatment_declined`, `moved_away`, `died`, `not_known` (the national treatment "
        "monitoring discharge reasons).",
    )


class Assessment(Strict):
    """What the service's assessment found: detail beyond engagement."""

    nps_use_identified: StrictBool | None = Field(
        default=None, description="Was NPS use identified at assessment?"
    )
    nps_categories: list[NpsCategory] = Field(
        default_factory=list,
        max_length=4,
        json_schema_extra={"uniqueItems": True},
        description="Which NPS families, in the notice's codes, each once.",
    )
    recovery_plan_addresses_nps: StrictBool | None = Field(
        default=None, description="Does the recovery plan address NPS use?"
    )
    harm_reduction_advice_given: StrictBool | None = Field(
        default=None, description="Was harm-reduction advice given (NPS, overdose, naloxone)?"
    )


class Accommodation(Strict):
    status: Literal[
        "settled", "temporary", "approved_premises", "no_fixed_abode", "rough_sleeping", "unknown"
    ] = Field(
        description="Where they live now: `settled`, `temporary`, `approved_premises`, "
        "`no_fixed_abode`, `rough_sleeping`, or `unknown`."
    )
    since: Day | None = Field(default=None, description="Since when: not before the release.")


class DrugAppointments(Strict):
    """A licence condition or community requirement about attending drug appointments."""

    kind: Literal["licence_condition", "requirement"] = Field(
        description="`licence_condition` (on licence) or `requirement` (of an order)."
    )
    change: Literal["imposed", "varied", "removed"]
    date: Day = Field(description="When it took effect: not before the release, nor after today.")
    details: LongText | None = Field(default=None, description="What it requires, e.g. weekly.")


class RiskToStaff(Strict):
    """What a keyworker needs to know to keep safe when meeting the person."""

    level: Literal["low", "medium", "high", "very_high"] = Field(
        description="The probation assessment of risk to staff."
    )
    details: LongText | None = Field(
        default=None, description="What the risk is, and how to manage it (e.g. meet in pairs)."
    )


class Recall(Strict):
    """The person is back in custody: this closes the release's thread."""

    date: Day = Field(description="The day: not before the release, nor after today.")
    kind: Literal["recalled", "returned_to_custody"] = Field(
        description="`recalled` (licence recall) or `returned_to_custody` (remanded or sentenced)."
    )


class CareUpdate(Strict):
    """An update about the person on one release, for the release's other recipient."""

    engagement: list[EngagementEvent] = Field(
        default_factory=list,
        max_length=50,
        description="From a substance misuse service: engagement events with their days.",
    )
    assessment: Assessment | None = Field(
        default=None, description="From a substance misuse service: what assessment found."
    )
    safeguarding: Safeguarding | None = Field(
        default=None,
        description="From a substance misuse service, always answered: risk to children and "
        "vulnerable adults, as in the notice. It always reaches probation.",
    )
    clinical_note: LongText | None = Field(
        default=None,
        description="From a substance misuse service: clinical text, shared with probation only "
        "with the person's `treatment_to_probation` consent.",
    )
    accommodation: Accommodation | None = Field(
        default=None, description="From a probation provider."
    )
    drug_appointments: DrugAppointments | None = Field(
        default=None, description="From a probation provider."
    )
    risk_to_staff: RiskToStaff | None = Field(
        default=None, description="From a probation provider."
    )
    recall: Recall | None = Field(
        default=None,
        description="From a probation provider: recall or return to custody. The release's "
        "thread is closed: its open engagement deadlines stop, and no update follows.",
    )


# The sections each author may send; the service must always answer `safeguarding`.
SECTIONS = {
    SERVICE: ("engagement", "assessment", "safeguarding", "clinical_note"),
    PROBATION: ("accommodation", "drug_appointments", "risk_to_staff", "recall"),
}
# The policy files' documents besides the release notice (app/disclosure/policy_files.py).
DOCUMENTS: dict[str, type[BaseModel]] = {"care-update": CareUpdate}


def _dates(update: CareUpdate) -> list[tuple[str, date]]:
    found = [(f"/engagement/{i}/date", e.date) for i, e in enumerate(update.engagement)]
    if update.accommodation and update.accommodation.since:
        found.append(("/accommodation/since", update.accommodation.since))
    if update.drug_appointments:
        found.append(("/drug_appointments/date", update.drug_appointments.date))
    if update.recall:
        found.append(("/recall/date", update.recall.date))
    return found


def implausible(
    update: CareUpdate, body: dict[str, Any], *, author: str, release_date: date | None, today: date
) -> list[dict[str, str]]:
    """What cannot be so of an update from `author` about a release on `release_date` (None:
    not known, not checked), sent on `today` in England and Wales: each a pointer and why."""
    errors = []
    others = {s for kind, sections in SECTIONS.items() if kind != author for s in sections}
    for section in sorted(set(body) & others):
        errors.append(
            {"pointer": f"/{section}", "detail": f"is not given by a {author.replace('_', ' ')}"}
        )
    for section in sorted(s for s, value in body.items() if value is None):
        errors.append({"pointer": f"/{section}", "detail": "is null: give it, or leave it out"})
    said = {s for s, value in body.items() if value is not None}
    if not said & set(SECTIONS.get(author, ())):
        errors.append({"pointer": "", "detail": "says nothing: give at least one section"})
    if author == SERVICE and update.safeguarding is None:
        errors.append(
            {"pointer": "/safeguarding", "detail": "is required from a substance misuse service"}
        )
    errors += _repeated(update)
    for i, event in enumerate(update.engagement):
        if event.event == EXITED and event.exit_reason is None:
            errors.append({"pointer": f"/engagement/{i}/exit_reason", "detail": "is required"})
        if event.event != EXITED and event.exit_reason is not None:
            errors.append(
                {"pointer": f"/engagement/{i}/exit_reason", "detail": "is given only with exited"}
            )
    for pointer, day in _dates(update):
        if day > today:
            errors.append({"pointer": pointer, "detail": f"is after today ({today.isoformat()})"})
        elif release_date is not None and day < release_date:
            said = f"is before the release ({release_date.isoformat()})"
            errors.append({"pointer": pointer, "detail": said})
    return errors


def _repeated(update: CareUpdate) -> list[dict[str, str]]:
    """An engagement event given twice for one day, or an NPS family named twice."""
    errors, seen = [], set()
    for i, event in enumerate(update.engagement):
        if (event.event, event.date) in seen:
            said = f"repeats an earlier {event.event} on {event.date.isoformat()}"
            errors.append({"pointer": f"/engagement/{i}", "detail": said})
        seen.add((event.event, event.date))
    named = update.assessment.nps_categories if update.assessment else []
    for i, category in enumerate(named):
        if category in named[:i]:
            said = "names a family already named"
            errors.append({"pointer": f"/assessment/nps_categories/{i}", "detail": said})
    return errors


def attended_days(update: CareUpdate) -> list[date]:
    """The days of the `attended` events, each once, in order."""
    return sorted({e.date for e in update.engagement if e.event == ATTENDED})
