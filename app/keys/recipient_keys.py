"""Recipients' encryption keys: what the exchange accepts (RSA, 2048 to 16384 bits, for
RSA-OAEP-256), the public JWK it keeps, and the parsed keys it encrypts with, kept once each.

No python-jose here: app/keys/jose.py encrypts, with a key from RecipientKeys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.keys.jwk import PRIVATE_MEMBERS, b64url_uint, kid_of, read_jwk
from app.keys.signing_keys import b64url, thumbprint

ENCRYPTION_ALGORITHM, CONTENT_ENCRYPTION = "RSA-OAEP-256", "A256GCM"
RSA_BITS = (2048, 16384)  # the least we accept, and the most OpenSSL will encrypt with


def encryption_jwk(document: str) -> dict[str, str]:
    """A recipient's encryption key, from PEM or a JWK, as the public JWK the exchange keeps:
    kty RSA, n, e, kid (the one given, or else the RFC 7638 thumbprint), alg RSA-OAEP-256, use
    enc. Raises ValueError saying why for a private key, a key that is not RSA of 2048 bits or
    more, or a JWK whose alg, use or key_ops says it is meant for something else."""
    text = document.strip()
    kid = None
    if text.startswith("{"):
        given = read_jwk(text)
        public, kid = _rsa_from_jwk(given), kid_of(given)
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
    numbers = public.public_numbers()
    members = {"e": _uint(numbers.e), "kty": "RSA", "n": _uint(numbers.n)}
    return {**members, "kid": kid or thumbprint(members), "alg": ENCRYPTION_ALGORITHM, "use": "enc"}


def _rsa_from_jwk(given: dict[str, Any]) -> rsa.RSAPublicKey:
    if any(m in given for m in PRIVATE_MEMBERS):
        raise ValueError("give the public key only, never the private one")
    if given.get("kty") != "RSA":
        raise ValueError("an encryption key must be RSA (RSA-OAEP-256): its kty is not RSA")
    if given.get("alg", ENCRYPTION_ALGORITHM) != ENCRYPTION_ALGORITHM:
        raise ValueError("its alg is another: only RSA-OAEP-256 is accepted")
    if given.get("use", "enc") != "enc":
        raise ValueError("its use is not enc")
    operations = given.get("key_ops", ["wrapKey"])
    if not isinstance(operations, list) or not {"wrapKey", "encrypt"} & set(map(str, operations)):
        raise ValueError("its key_ops do not allow wrapKey")
    try:
        e, n = b64url_uint(given.get("e"), "e"), b64url_uint(given.get("n"), "n")
        numbers = rsa.RSAPublicNumbers(e, n)
        return numbers.public_key()
    except (ValueError, TypeError):
        raise ValueError("its n and e do not make an RSA public key") from None


def _uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


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
