"""A recipient with its own encryption key pair, registered with the exchange by its public half."""

from __future__ import annotations

import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto import jwe as jwcrypto_jwe
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto.common import json_decode


class Recipient:
    """A recipient's own key pair; the exchange is given only the public half."""

    def __init__(self, kid: str | None = None) -> None:
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.jwk = jwcrypto_jwk.JWK.from_pem(pem)
        public = json.loads(self.jwk.export_public())
        self.given = json.dumps({**public, **({"kid": kid} if kid else {})})

    def decrypt(self, token: str) -> tuple[dict[str, Any], str]:
        """The JWE's protected header and the JWS inside, by jwcrypto with the private key."""
        assert token.count(".") == 4
        envelope = jwcrypto_jwe.JWE()
        envelope.deserialize(token, key=self.jwk)
        return json_decode(envelope.objects["protected"]), envelope.payload.decode()


async def register(world, code: str, recipient: Recipient) -> str:
    response = await world.api.put(
        "/v1/encryption-key", json={"key": recipient.given}, headers=await world.headers(code)
    )
    assert response.status_code == 200, response.text
    return response.json()["kid"]
