"""A recipient's own encryption key: with one, its messages come signed and then encrypted."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.access import encryption_keys
from app.api.callers import SubscriptionWriter
from app.api.deps import Now, Session
from app.api.problems import PROBLEMS
from app.wire.errors import Problem, invalid
from app.wire.keys import EncryptionKeyIn, EncryptionKeyOut

router = APIRouter(prefix="/v1/encryption-key", tags=["encryption-key"])


@router.get("", name="get", response_model=EncryptionKeyOut, responses=PROBLEMS)
async def get(caller: SubscriptionWriter, session: Session) -> EncryptionKeyOut:
    """Your organisation's encryption key, as the public JWK kept; 404 if it has none."""
    public_jwk = await encryption_keys.key_of(session, caller.organisation_code)
    if public_jwk is None:
        raise Problem(404, "Not found", "No encryption key: your messages are signed only.")
    return EncryptionKeyOut.model_validate(public_jwk)


@router.put("", name="put", response_model=EncryptionKeyOut, responses=PROBLEMS)
async def put(
    body: EncryptionKeyIn, caller: SubscriptionWriter, session: Session, now: Now
) -> EncryptionKeyOut:
    """Register (or replace) your RSA public key: every message made for you from now on is
    signed, then encrypted to it (compact JWE, RSA-OAEP-256 with A256GCM, `cty` JWT)."""
    try:
        public_jwk = await encryption_keys.set_key(
            session, caller.organisation_code, body.key, now=now, actor=caller
        )
    except encryption_keys.KeyRefused as exc:
        raise invalid([{"pointer": "/key", "detail": str(exc)}]) from None
    return EncryptionKeyOut.model_validate(public_jwk)


@router.delete("", name="delete", status_code=204, responses=PROBLEMS)
async def delete(caller: SubscriptionWriter, session: Session, now: Now) -> Response:
    """Remove it: messages made from now on are signed only. Those made before stay as made."""
    await encryption_keys.remove_key(session, caller.organisation_code, now=now, actor=caller)
    return Response(status_code=204)
