"""The release notice, version 1: what a prison tells the exchange about a person it releases.

This model is the source of `schemas/release-notice.v1.json`. Every object refuses unknown
members, every code is enumerated, and safeguarding must always be answered.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from app.schemas import UtcInstant

Text = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=4000)]
OrganisationCode = Annotated[
    str, StringConstraints(strict=True, pattern=r"^[A-Z0-9][A-Z0-9-]{1,31}$")
]
YesNoUnknown = Literal["yes", "no", "unknown"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Person(Strict):
    noms_number: Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Z][0-9]{4}[A-Z]{2}$")]
    crn: Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Z][0-9]{6}$")] | None = None
    pnc_number: (
        Annotated[str, StringConstraints(strict=True, pattern=r"^[0-9]{2,4}/[0-9]{1,7}[A-Z]$")]
        | None
    ) = None
    given_name: Text
    family_name: Text
    date_of_birth: date


class Accommodation(Strict):
    status: Literal["settled", "temporary", "approved_premises", "no_fixed_abode", "unknown"]
    local_authority: Text | None = None


class Release(Strict):
    prison_code: Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Z]{3}$")]
    release_date: date
    reason: Literal["released", "released_to_hospital", "transferred", "deported"] = Field(
        description="Only `released` is a release into the community."
    )
    on_licence: StrictBool | None = None
    accommodation: Accommodation | None = None


class ResponsibleOfficer(Strict):
    name: Text
    email: Annotated[str, StringConstraints(strict=True, pattern=r"^[^@\s]+@[^@\s]+$")] | None = (
        None
    )


class Appointment(Strict):
    date: date
    location: Text | None = None


class ReleasePlan(Strict):
    probation_provider: OrganisationCode = Field(description="Code of the probation provider.")
    responsible_officer: ResponsibleOfficer | None = None
    substance_misuse_service: OrganisationCode | None = Field(
        default=None, description="Code of the community substance misuse service, if referred."
    )
    treatment_appointment: Appointment | None = None


class Substance(Strict):
    category: Literal["synthetic_cannabinoid", "stimulant_type", "hallucinogenic", "downer_type"]
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
    ) = None
    local_name: Text | None = Field(default=None, description="What it is called, e.g. Spice.")


class Incident(Strict):
    date: date
    type: Literal[
        "hospital_admission",
        "medical_emergency",
        "adjudication",
        "self_harm",
        "violence",
        "debt",
        "other",
    ]


class TreatmentInCustody(Strict):
    detoxification: StrictBool | None = None
    psychosocial_support: StrictBool | None = None
    building_skills_for_recovery: StrictBool | None = None
    clinical_notes: LongText | None = Field(
        default=None, description="Clinical text; shared with probation only with consent."
    )


class NpsUse(Strict):
    status: Literal["current", "past", "none_known"]
    substances: list[Substance] = Field(default_factory=list, max_length=20)
    first_use_in_custody: StrictBool | None = None
    pattern: Literal["daily", "weekly", "less_than_weekly", "binge", "unknown"] | None = None
    level: Literal["experimental", "recreational", "problematic", "dependent", "unknown"] | None = (
        None
    )
    route: (
        Literal["smoked", "vaped", "swallowed", "snorted", "injected", "other", "unknown"] | None
    ) = None
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
    ] = Field(default_factory=list, max_length=10)
    last_use_date: date | None = None
    evidence: list[
        Literal["self_report", "drug_test", "adjudication", "healthcare", "intelligence"]
    ] = Field(default_factory=list, max_length=10)
    incidents_in_custody: list[Incident] = Field(default_factory=list, max_length=100)
    treatment_in_custody: TreatmentInCustody | None = None
    overdose_risk_on_release: Literal["low", "medium", "high", "unknown"] | None = None
    naloxone_supplied: StrictBool | None = None


class OtherSubstanceUse(Strict):
    alcohol: StrictBool | None = None
    opioids: StrictBool | None = None
    cocaine: StrictBool | None = None
    notes: LongText | None = None


class WiderNeeds(Strict):
    housing: StrictBool | None = None
    mental_health: StrictBool | None = None
    relationships: StrictBool | None = None
    finances: StrictBool | None = None


class Safeguarding(Strict):
    children_contact: YesNoUnknown = Field(
        description="Will the person have contact with children?"
    )
    vulnerable_adults_contact: YesNoUnknown = Field(
        description="Will the person have contact with vulnerable adults?"
    )
    concerns: LongText | None = None


class ConsentRecord(Strict):
    scope: Literal["substance_misuse_service", "probation_clinical_details"]
    decision: Literal["given", "refused"]
    recorded_at: UtcInstant = Field(description="When it was recorded, with its UTC offset.")
    recorded_by: Text


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
