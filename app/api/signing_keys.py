"""Every key the exchange ever signed with, public, so that any message it sent can be verified."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter

from app.api.deps import KeyRingDep, Now
from app.api.problems import PROBLEMS
from app.keys import jose
from app.wire.errors import Problem
from app.wire.keys import SigningKeyOut, SigningKeyPage

router = APIRouter(prefix="/v1/signing-keys", tags=["signing-keys"])
ANSWERS = {s: PROBLEMS[s] for s in (404, 422)}


def _out(ring: jose.KeyRing, kid: str, now: datetime) -> SigningKeyOut:
    key = ring.by_kid[kid]
    return SigningKeyOut(
        kid=kid, status=ring.status(kid, now), retired_at=key.retired_at, jwk=dict(key.public_jwk)
    )


@router.get("", name="list", response_model=SigningKeyPage)
async def list_signing_keys(keyring: KeyRingDep, now: Now) -> SigningKeyPage:
    """The current key first, then the others, most recently retired first. No token needed."""
    return SigningKeyPage(items=[_out(keyring, kid, now) for kid in keyring.history()])


@router.get("/{kid}", name="get", response_model=SigningKeyOut, responses=ANSWERS)
async def get(kid: str, keyring: KeyRingDep, now: Now) -> SigningKeyOut:
    """One key, by the `kid` in a message's header. No token needed."""
    if kid not in keyring.by_kid:
        raise Problem(404, "Not found", "No signing key with this kid.")
    return _out(keyring, kid, now)
