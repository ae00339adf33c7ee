"""Recipients' encryption keys: what the exchange accepts (RSA, 2048 to 16384 bits, for
RSA-OAEP-256), the public JWK it keeps, and the parsed keys it encrypts with, kept once each.

No python-jose here: app/jose.py encrypts, with a key from RecipientKeys.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.signing_keys import b64url, thumbprint

ENCRYPTION_ALGORITHM, CONTENT_ENCRYPTION = "RSA-OAEP-256", "A256GCM"
RSA_BITS = (2048, 16384)  # the least we accept, and the most OpenSSL will encrypt with
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


def encryption_jwk(document: str) -> dict[str, str]:
    """A recipient's encryption key, from PEM or a JWK, as the public JWK the exchange keeps:
    kty RSA, n, e, kid (the one given, or else the RFC 7638 thumbprint), alg RSA-OAEP-256, use
    enc. Raises ValueError saying why for a private key, a key that is not RSA of 2048 bits or
    more, or a JWK whose alg, use or key_ops says it is meant for something else."""
    text = document.strip()
    kid = None
    if text.startswith("{"):
        try:
            given = json.loads(text)
        except (ValueError, RecursionError):
            raise ValueError("the JWK is not valid JSON") from None
        if not isinstance(given, dict):
            raise ValueError("the JWK must be a JSON object")
        public, kid = _rsa_from_jwk(given), given.get("kid")
    elif "PRIVATE KEY" in text:
        raise ValueError("give the public key only, never the private one")
    else:
        try:
            public = serialization.load_pem_public_key(text.encode())
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise ValueError("neither a PEM public key nor a JWK") from None
    if not isinstance(public, rsa.RSAPublicKey):
        raise ValueError("an encryption key must be RSA (RSA-OAEP-256), not EC or another kind")
    if not RSA_BITS[0] <= public.key_size <= RSA_BITS[1]:
        raise ValueError(f"an RSA key of {public.key_size} bits; 2048 to 16384 are accepted")
    if kid is not None and not (isinstance(kid, str) and 0 < len(kid) <= 128):
        raise ValueError("kid must be a string of 1 to 128 characters")
    numbers = public.public_numbers()
    members = {"e": _uint(numbers.e), "kty": "RSA", "n": _uint(numbers.n)}
    return {**members, "kid": kid or thumbprint(members), "alg": ENCRYPTION_ALGORITHM, "use": "enc"}


def _rsa_from_jwk(given: dict[str, Any]) -> rsa.RSAPublicKey:
    if any(m in given for m in PRIVATE_MEMBERS):
        raise ValueError("give the public key only, never the private one")
    if given.get("kty") != "RSA":
        raise ValueError(f"an encryption key must be RSA (RSA-OAEP-256), not {given.get('kty')}")
    if given.get("alg", ENCRYPTION_ALGORITHM) != ENCRYPTION_ALGORITHM:
        raise ValueError(f"its alg is {given.get('alg')}; only RSA-OAEP-256 is accepted")
    if given.get("use", "enc") != "enc":
        raise ValueError(f"its use is {given.get('use')}, not enc")
    operations = given.get("key_ops", ["wrapKey"])
    if not isinstance(operations, list) or not {"wrapKey", "encrypt"} & set(map(str, operations)):
        raise ValueError("its key_ops do not allow wrapKey")
    try:
        numbers = rsa.RSAPublicNumbers(_from_uint(given.get("e")), _from_uint(given.get("n")))
        return numbers.public_key()
    except (ValueError, TypeError):
        raise ValueError("its n and e do not make an RSA public key") from None


def _uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _from_uint(value: object) -> int:
    if not isinstance(value, str) or not value:
        raise ValueError("not a base64url number")
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
    except binascii.Error:
        raise ValueError("not a base64url number") from None
    return int.from_bytes(raw, "big")


@dataclass
class RecipientKeys:
    """Recipients' encryption keys, each parsed from its JWK once and kept by kid, n and e: a
    kid is the recipient's own choice, and two recipients may well choose the same one."""

    limit: int = 256
    parsed: dict[tuple[str, str, str], rsa.RSAPublicKey] = field(default_factory=dict)

    def key(self, public_jwk: Mapping[str, str]) -> rsa.RSAPublicKey:
        if public_jwk.get("alg") != ENCRYPTION_ALGORITHM or public_jwk.get("use") != "enc":
            raise ValueError("not an encryption key that encryption_jwk() made")
        name = (public_jwk["kid"], public_jwk["n"], public_jwk["e"])
        if name not in self.parsed:
            if len(self.parsed) >= self.limit:
                self.parsed.clear()  # keys are few and rarely change: no need to be clever
            self.parsed[name] = _rsa_from_jwk(dict(public_jwk))
        return self.parsed[name]
