"""The release notice, version 1: what a prison tells the exchange about a person it releases.

This model is the source of `schemas/release-notice.v1.json`, and its descriptions are written
for the people who fill a notice in. Every object refuses unknown members, every code is
enumerated, and safeguarding must always be answered. `implausible()` adds the checks that need
to know when the notice arrived: no last use or incident after it, a release date near it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from app.wire.base import CONSENT_SCOPES_SAID, ConsentScope, Instant, IsoDate, one_line, plain_text

Text = one_line(200)  # names, places: one line
LongText = plain_text(4000)  # what is written for a reader: lines, tabs, never NUL
OrganisationCode = Annotated[
    str, StringConstraints(strict=True, pattern=r"^[A-Z0-9][A-Z0-9-]{1,31}$")
]
NomsNumber = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Z][0-9]{4}[A-Z]{2}$")]
# user@domain, and no space or control character anywhere in it.
Email = Annotated[
    str,
    StringConstraints(
        strict=True, pattern=r"^[^@\s\x00-\x1f\x7f-\x9f]+@[^@\s\x00-\x1f\x7f-\x9f]+$"
    ),
]
YesNoUnknown = Literal["yes", "no", "unknown"]
Day = IsoDate  # for members named `date`, whose name would hide the type

# How far from the day a notice arrives its release date may be.
RELEASE_DATE_EARLIEST = timedelta(days=28)  # a late notice, about a release that has happened
RELEASE_DATE_LATEST = timedelta(days=183)  # release planning starts about twelve weeks out
APPOINTMENT_LATEST = timedelta(days=366)
# A consent recorded "later than now" by a clock that runs a little fast is still accepted.
CLOCK_SKEW = timedelta(minutes=5)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Person(Strict):
    """Who is being released. Used to match the person in the recipient's own records."""

    noms_number: NomsNumber = Field(
        description="Prison number (NOMS), e.g. A1234BC: a letter, 4 digits, 2 letters."
    )
    crn: Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Z][0-9]{6}$")] | None = Field(
        default=None, description="Probation case reference number (CRN), e.g. X123456."
    )
    pnc_number: (
        Annotated[str, StringConstraints(strict=True, pattern=r"^[0-9]{2,4}/[0-9]{1,7}[A-Z]$")]
        | None
    ) = Field(
        default=None,
        description="Police National Computer number: year, '/', serial, check letter, "
        "e.g. 2001/0123456A. Never sent to substance misuse services.",
    )
    given_name: Text = Field(description="Given name as held by the prison.")
    family_name: Text = Field(description="Family name as held by the prison.")
    date_of_birth: IsoDate = Field(description="Date of birth, YYYY-MM-DD.")


class Accommodation(Strict):
    status: Literal["settled", "temporary", "approved_premises", "no_fixed_abode", "unknown"] = (
        Field(
            description="Where they will live: `settled` (own or family home for the long term), "
            "`temporary` (hostel, sofa, short let), `approved_premises` (probation hostel), "
            "`no_fixed_abode`, or `unknown`."
        )
    )
    local_authority: Text | None = Field(
        default=None, description="The local authority area they are released to, e.g. Leeds."
    )


class Release(Strict):
    prison_code: Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Z]{3}$")] = Field(
        description="Three-letter code of the releasing prison; it must be your own."
    )
    release_date: IsoDate = Field(
        description="The day of release: no more than 28 days before the notice is sent, "
        "no more than 183 days after."
    )
    reason: Literal["released", "released_to_hospital", "transferred", "deported"] = Field(
        description="`released`: into the community (the only reason anything is shared). "
        "`released_to_hospital`: to a secure hospital. `transferred`: to another prison. "
        "`deported`: removed from the UK. A notice with any reason but `released` is recorded "
        "and sent to nobody."
    )
    on_licence: StrictBool | None = Field(
        default=None, description="Released on licence, under probation supervision?"
    )
    accommodation: Accommodation | None = None


class ResponsibleOfficer(Strict):
    name: Text = Field(description="The probation practitioner who will supervise them.")
    email: Email | None = Field(default=None, description="Their work email address.")


class Appointment(Strict):
    date: Day = Field(
        description="The day of the first community treatment appointment: from 28 days "
        "before the notice is sent to a year after."
    )
    location: Text | None = Field(default=None, description="Where it is, e.g. the service's hub.")


class ReleasePlan(Strict):
    probation_provider: OrganisationCode = Field(
        description="Code of the probation provider that will supervise them, e.g. N07. "
        "It must be registered with the exchange."
    )
    responsible_officer: ResponsibleOfficer | None = None
    substance_misuse_service: OrganisationCode | None = Field(
        default=None,
        description="Code of the community substance misuse service they are referred to, if "
        "any, e.g. SMS-LEEDS. It must be registered with the exchange.",
    )
    treatment_appointment: Appointment | None = None


# The NPS families by effect: a notice's substances, and a care update's assessment, use them.
NpsCategory = Literal["synthetic_cannabinoid", "stimulant_type", "hallucinogenic", "downer_type"]


class Substance(Strict):
    category: NpsCategory = Field(
        description="The NPS family by effect: `synthetic_cannabinoid` (Spice, Mamba, K2), "
        "`stimulant_type` (cathinones such as mephedrone; Benzo Fury), `hallucinogenic`, "
        "`downer_type` (tranquilliser-type: designer benzodiazepines, opioid-like NPS)."
    )
    unodc_group: (
        Literal[
            "synthetic_cannabinoids",
            "synthetic_cathinones",
            "phenethylamines",
            "piperazines",
            "tryptamines",
            "aminoindanes",
            "phencyclidine_type",
            "plant_based",
            "other",
        ]
        | None
    ) = Field(
        default=None,
        description="The UNODC Early Warning Advisory group, where known (optional, finer).",
    )
    local_name: Text | None = Field(
        default=None, description="What it is called on the wing, e.g. Spice, Mamba, Black Mamba."
    )


class Incident(Strict):
    date: Day = Field(description="When it happened; not after the notice is sent.")
    type: Literal[
        "hospital_admission",
        "medical_emergency",
        "adjudication",
        "self_harm",
        "violence",
        "debt",
        "other",
    ] = Field(
        description="An NPS-related incident in custody: `hospital_admission`, "
        "`medical_emergency` (a code red or blue), `adjudication` (a disciplinary charge), "
        "`self_harm`, `violence`, `debt` (drug debt, bullying over it), `other`."
    )


class TreatmentInCustody(Strict):
    detoxification: StrictBool | None = Field(
        default=None, description="A clinically managed detoxification or reduction?"
    )
    psychosocial_support: StrictBool | None = Field(
        default=None, description="Psychosocial support from the prison's drug service?"
    )
    building_skills_for_recovery: StrictBool | None = Field(
        default=None, description="Took part in the Building Skills for Recovery programme?"
    )
    clinical_notes: LongText | None = Field(
        default=None, description="Clinical text; shared with probation only with consent."
    )


class NpsUse(Strict):
    """New Psychoactive Substances: the pattern, level and funding of use, and its risks."""

    status: Literal["current", "past", "none_known"] = Field(
        description="`current` (used in this sentence, up to release), `past` (earlier, not "
        "now), `none_known`."
    )
    substances: list[Substance] = Field(default_factory=list, max_length=20)
    first_use_in_custody: StrictBool | None = Field(
        default=None, description="Did they first use NPS in custody?"
    )
    pattern: Literal["daily", "weekly", "less_than_weekly", "binge", "unknown"] | None = Field(
        default=None, description="How often: `daily`, `weekly`, `less_than_weekly`, `binge`."
    )
    level: Literal["experimental", "recreational", "problematic", "dependent", "unknown"] | None = (
        Field(
            default=None,
            description="How serious: `experimental` (tried it), `recreational`, `problematic` "
            "(causing harm), `dependent` (withdrawal, compulsion).",
        )
    )
    route: (
        Literal["smoked", "vaped", "swallowed", "snorted", "injected", "other", "unknown"] | None
    ) = Field(default=None, description="How it is mostly taken.")
    funding: list[
        Literal[
            "debt",
            "trading_possessions",
            "prison_wages",
            "family_or_friends",
            "dealing",
            "other",
            "unknown",
        ]
    ] = Field(
        default_factory=list,
        max_length=10,
        description="How it was paid for: `debt`, `trading_possessions` (canteen, vapes, "
        "clothes), `prison_wages`, `family_or_friends` (money sent in), `dealing`, `other`.",
    )
    last_use_date: IsoDate | None = Field(
        default=None, description="The last known use; not after the notice is sent."
    )
    evidence: list[
        Literal["self_report", "drug_test", "adjudication", "healthcare", "intelligence"]
    ] = Field(
        default_factory=list,
        max_length=10,
        description="What the account rests on: `self_report`, `drug_test`, `adjudication`, "
        "`healthcare` (a clinical record), `intelligence` (security information).",
    )
    incidents_in_custody: list[Incident] = Field(default_factory=list, max_length=100)
    treatment_in_custody: TreatmentInCustody | None = None
    overdose_risk_on_release: Literal["low", "medium", "high", "unknown"] | None = Field(
        default=None,
        description="Clinical judgement of overdose risk in the first weeks out, when tolerance "
        "is low.",
    )
    naloxone_supplied: StrictBool | None = Field(
        default=None, description="Was take-home naloxone given on release?"
    )


class OtherSubstanceUse(Strict):
    alcohol: StrictBool | None = Field(default=None, description="Problem alcohol use?")
    opioids: StrictBool | None = Field(default=None, description="Heroin or other opioid use?")
    cocaine: StrictBool | None = Field(default=None, description="Cocaine or crack use?")
    notes: LongText | None = Field(default=None, description="Anything else that matters.")


class WiderNeeds(Strict):
    """Needs around the drug use that the plan must meet: true where there is a need."""

    housing: StrictBool | None = None
    mental_health: StrictBool | None = None
    relationships: StrictBool | None = None
    finances: StrictBool | None = None


class Safeguarding(Strict):
    """Always answered: risk to children and vulnerable adults goes to probation whatever else."""

    children_contact: YesNoUnknown = Field(
        description="Will the person have contact with children? `yes`, `no` or `unknown`."
    )
    vulnerable_adults_contact: YesNoUnknown = Field(
        description="Will the person have contact with vulnerable adults? `yes`, `no` or `unknown`."
    )
    concerns: LongText | None = Field(
        default=None, description="What the concern is, and who is at risk."
    )


class ConsentRecord(Strict):
    scope: ConsentScope = Field(description=CONSENT_SCOPES_SAID)
    decision: Literal["given", "refused"] = Field(
        description="`given` or `refused`. The latest record for a scope is the one that counts."
    )
    recorded_at: Instant = Field(
        description="When it was recorded, with its UTC offset; not after the notice is sent."
    )
    recorded_by: Text = Field(description="Who recorded it, by role, e.g. Healthcare, HMP X.")


class ReleaseNotice(Strict):
    """A person's release, their NPS use and what is needed to keep them and others safe."""

    person: Person
    release: Release
    release_plan: ReleasePlan
    nps_use: NpsUse
    other_substance_use: OtherSubstanceUse | None = None
    wider_needs: WiderNeeds | None = None
    safeguarding: Safeguarding
    consent: list[ConsentRecord] = Field(default_factory=list, max_length=20)


def implausible(notice: ReleaseNotice, received_at: datetime) -> list[dict[str, str]]:
    """What cannot be true of a notice received at `received_at`: each as a pointer and why.

    A date is "after the notice" only once it is after that day anywhere on Earth (UTC+14), so a
    date that is today in the UK is never refused for being tomorrow in UTC.
    """
    latest_day = (received_at + timedelta(hours=14)).date()
    errors = []

    def refuse(pointer: str, detail: str) -> None:
        errors.append({"pointer": pointer, "detail": detail})

    release_date = notice.release.release_date
    if release_date < received_at.date() - RELEASE_DATE_EARLIEST:
        refuse("/release/release_date", "is more than 28 days before the notice was sent")
    elif release_date > received_at.date() + RELEASE_DATE_LATEST:
        refuse("/release/release_date", "is more than 183 days after the notice was sent")
    born = notice.person.date_of_birth
    age = (
        release_date.year
        - born.year
        - ((release_date.month, release_date.day) < (born.month, born.day))
    )
    if age < 10:
        refuse("/person/date_of_birth", "makes them under 10 on release")
    elif age > 120:
        refuse("/person/date_of_birth", "makes them over 120 on release")
    use = notice.nps_use
    if use.last_use_date and use.last_use_date > latest_day:
        refuse("/nps_use/last_use_date", "is after the notice was sent")
    for i, incident in enumerate(use.incidents_in_custody):
        if incident.date > latest_day:
            refuse(f"/nps_use/incidents_in_custody/{i}/date", "is after the notice was sent")
    for i, consent in enumerate(notice.consent):
        if consent.recorded_at > received_at + CLOCK_SKEW:
            refuse(f"/consent/{i}/recorded_at", "is after the notice was sent")
    # Checked against the arrival, not the release date, so one wrong date is one error.
    appointment = notice.release_plan.treatment_appointment
    if appointment and not (
        received_at.date() - RELEASE_DATE_EARLIEST
        <= appointment.date
        <= received_at.date() + APPOINTMENT_LATEST
    ):
        refuse(
            "/release_plan/treatment_appointment/date",
            "is not within 28 days before to a year after the notice was sent",
        )
    return errors
