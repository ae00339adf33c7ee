"""Wire formats of keys: the exchange's signing keys, and a recipient's encryption key."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from app.wire.base import RequestBody, Wire
from app.wire.schemas import KeyText


class SigningKeyOut(Wire):
    kid: str
    status: Literal["current", "grace", "retired"] = Field(
        description="`current`: it signs now. `grace`: replaced less than "
        "EXCHANGE_SIGNING_KEY_GRACE_DAYS ago, still in the JWKS. `retired`: only here, to "
        "verify the messages it signed."
    )
    retired_at: datetime | None = Field(
        description="When a rotation replaced it; null for the current key, and for a key "
        "retired before retirement times were recorded."
    )
    jwk: dict[str, str] = Field(description="Its public JWK (EC P-256, ES256).")


class SigningKeyPage(Wire):
    items: list[SigningKeyOut] = Field(description="Every key, the current one first.")
    next_cursor: None = Field(default=None, description="Always null: the list is whole.")


class EncryptionKeyIn(RequestBody):
    key: KeyText = Field(
        description="Your RSA public key (2048 bits or more) as PEM, or as a JWK in a string; "
        "a JWK's alg, if given, must be RSA-OAEP-256 and its use enc. Never the private key.",
    )


class EncryptionKeyOut(Wire):
    """The public JWK kept: each message to you is encrypted to it."""

    kty: Literal["RSA"]
    n: str
    e: str
    kid: str = Field(description="The kid your JWK gave, or else its RFC 7638 thumbprint.")
    alg: Literal["RSA-OAEP-256"]
    use: Literal["enc"]
