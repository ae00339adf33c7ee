"""A person's consent records: recorded by a prison or treatment service, withdrawn, listed."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Response

from app.api.callers import ConsentWriter
from app.api.deps import Now, Session, SigningDep
from app.api.problems import PROBLEMS, documented
from app.consent import records as consents
from app.consent import withdrawal
from app.notices.document import CLOCK_SKEW
from app.storage.models import Consent
from app.wire.errors import Problem, invalid
from app.wire.schemas import ConsentHistory, ConsentIn, ConsentOut, WithdrawalOut

# The scopes a service records besides a prison: consent to its own kind, and a treatment
# service the consent to share its care updates' clinical detail with probation (app/updates).
OWN_SCOPES = {
    "substance_misuse_service": ("substance_misuse_service", "treatment_to_probation"),
}

router = APIRouter(prefix="/v1/people/{noms_number}/consents", tags=["consents"])
NomsNumber = Annotated[
    str,
    Path(
        pattern=r"^[A-Z][0-9]{4}[A-Z]{2}$",
        description="Prison number, e.g. A1234BC.",
        examples=["A1234BC"],
    ),
]


def _out(record: Consent) -> ConsentOut:
    return ConsentOut(
        id=record.id,
        scope=record.scope,
        decision=record.decision,
        recorded_at=record.recorded_at,
        recorded_by=record.recorded_by,
        expires_at=record.expires_at,
        source="notice" if record.notice_id else "api",
        created_at=record.created_at,
        withdrawn_at=record.withdrawn_at,
        voided_at=record.voided_at,
    )


@router.post("", name="record", status_code=201, response_model=ConsentOut, responses=PROBLEMS)
async def post_consent(
    noms_number: NomsNumber,
    body: ConsentIn,
    response: Response,
    caller: ConsentWriter,
    session: Session,
    signing: SigningDep,
    now: Now,
) -> ConsentOut:
    """Record a consent decision about a person whose notice concerns you (404 otherwise). It
    counts for every notice decided from now on; a refusal also stops, at once, what relied on
    an earlier consent, as a withdrawal does."""
    recorded_at = body.recorded_at or now
    errors = []
    if recorded_at > now + CLOCK_SKEW:
        errors.append({"pointer": "/recorded_at", "detail": "is in the future"})
    if body.expires_at is not None and body.expires_at <= recorded_at:
        errors.append({"pointer": "/expires_at", "detail": "is not after recorded_at"})
    if caller.kind != "prison" and body.scope not in OWN_SCOPES.get(caller.kind, ()):
        said = " or ".join(OWN_SCOPES.get(caller.kind, ()))
        errors.append({"pointer": "/scope", "detail": f"a service records consent to {said}"})
    if errors:
        raise invalid(errors)
    row = await withdrawal.record_decision(
        session,
        noms_number,
        scope=body.scope,
        decision=body.decision,
        recorded_at=recorded_at,
        recorded_by=body.recorded_by,
        expires_at=body.expires_at,
        caller=caller,
        signing=signing,
        now=now,
    )
    response.headers["Location"] = f"/v1/people/{noms_number}/consents/{row.id}"
    return _out(row)


@router.get("", name="list", response_model=ConsentHistory, responses=PROBLEMS)
async def history(
    noms_number: NomsNumber,
    caller: ConsentWriter,
    session: Session,
    signing: SigningDep,
    now: Now,
) -> ConsentHistory:
    """Every consent record for the person, withdrawn ones included, and what stands now."""
    person_ref = signing.data_keys.person_ref(noms_number)
    await consents.know_person(session, person_ref, caller)
    rows = await consents.history(session, person_ref)
    return ConsentHistory(
        items=[_out(r) for r in rows],
        next_cursor=None,
        standing=await consents.standing(session, person_ref, now),
    )


@router.get("/{consent_id}", name="get", response_model=ConsentOut, responses=PROBLEMS)
async def get(
    noms_number: NomsNumber,
    consent_id: uuid.UUID,
    caller: ConsentWriter,
    session: Session,
    signing: SigningDep,
) -> ConsentOut:
    """One consent record of the person."""
    person_ref = signing.data_keys.person_ref(noms_number)
    await consents.know_person(session, person_ref, caller)
    found = await session.get(Consent, consent_id)
    if found is None or found.person_ref != person_ref:
        raise Problem(404, "Not found", "No such consent record for this person.")
    return _out(found)


@router.post(
    "/{consent_id}/withdrawal",
    name="withdraw",
    response_model=WithdrawalOut,
    responses={**PROBLEMS, 409: documented("Already withdrawn, or a refusal.")},
)
async def withdraw(
    noms_number: NomsNumber,
    consent_id: uuid.UUID,
    caller: ConsentWriter,
    session: Session,
    signing: SigningDep,
    now: Now,
) -> WithdrawalOut:
    """Withdraw a consent, at once: undelivered messages that relied on it are decided again
    and not sent if no longer allowed; recipients that may hold one get consent.withdrawn."""
    done = await withdrawal.withdraw_consent(
        session, noms_number, consent_id, caller=caller, signing=signing, now=now
    )
    return WithdrawalOut(
        consent=_out(done.consent),
        revoked=done.effects.revoked,
        redisclosed=done.effects.redisclosed,
        notified=done.effects.notified,
    )
