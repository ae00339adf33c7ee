"""The OpenID provider, as the console uses it: its discovery document and signing keys,
fetched with httpx on first use (not at start-up: the exchange serves its API even when the
provider is down) and kept; the keys fetched again once when a token names a kid not seen
yet (the provider rotated). The code is exchanged at its token endpoint with
client_secret_basic and the PKCE verifier."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from app.console.signin import SignInRefused
from app.keys import jose

TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class Discovery:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None


class Provider:
    def __init__(self, issuer: str, client_id: str, client_secret: str) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self._secret = client_secret
        self._discovery: Discovery | None = None
        self._keys: dict[str, jose.Verifier] = {}

    async def _get(self, client: httpx.AsyncClient, url: str) -> dict[str, Any]:
        try:
            response = await client.get(url, timeout=TIMEOUT_SECONDS)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, json.JSONDecodeError) as error:
            raise SignInRefused(
                "provider_unreachable", "The identity provider cannot be reached: try later."
            ) from error
        if not isinstance(document, dict):
            raise SignInRefused(
                "provider_unreadable", "The identity provider's answer is not usable."
            )
        return document

    async def discovery(self, client: httpx.AsyncClient) -> Discovery:
        if self._discovery is None:
            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            document = await self._get(client, url)
            if document.get("issuer") != self.issuer:  # OpenID Connect Discovery 4.3
                raise SignInRefused(
                    "unknown_issuer", "The identity provider names another issuer than configured."
                )
            try:
                self._discovery = Discovery(
                    issuer=document["issuer"],
                    authorization_endpoint=str(document["authorization_endpoint"]),
                    token_endpoint=str(document["token_endpoint"]),
                    jwks_uri=str(document["jwks_uri"]),
                    end_session_endpoint=document.get("end_session_endpoint"),
                )
            except KeyError as error:
                raise SignInRefused(
                    "provider_unreadable", "The identity provider's discovery is incomplete."
                ) from error
        return self._discovery

    async def keys(self, client: httpx.AsyncClient, kid: str | None) -> dict[str, jose.Verifier]:
        """The provider's signing keys by kid, fetched again if kid is not among them."""
        if not self._keys or (kid is not None and kid not in self._keys):
            found = await self.discovery(client)
            document = await self._get(client, found.jwks_uri)
            keys = {}
            for item in document.get("keys", []):
                if not isinstance(item, dict) or item.get("use", "sig") != "sig":
                    continue
                if "kid" not in item:
                    continue
                given = {k: v for k, v in item.items() if k != "kid"}
                try:
                    _, verifier = jose.public_verifier(json.dumps(given))
                except ValueError:
                    continue  # a key of a kind the exchange does not accept
                keys[str(item["kid"])] = jose.Verifier(str(item["kid"]), verifier.alg, verifier.key)
            self._keys = keys
        return self._keys

    async def exchange_code(
        self, client: httpx.AsyncClient, *, code: str, redirect_uri: str, verifier: str
    ) -> str:
        """The ID token the token endpoint answers for the code."""
        found = await self.discovery(client)
        try:
            response = await client.post(
                found.token_endpoint,
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": redirect_uri,
                    "code_verifier": verifier,
                },
                auth=(self.client_id, self._secret),
                timeout=TIMEOUT_SECONDS,
            )
        except httpx.HTTPError as error:
            raise SignInRefused(
                "provider_unreachable", "The identity provider cannot be reached: try later."
            ) from error
        if response.status_code != 200:
            raise SignInRefused(
                "code_refused", "The identity provider refused to complete the sign-in."
            )
        try:
            token = response.json().get("id_token")
        except (json.JSONDecodeError, AttributeError):
            token = None
        if not isinstance(token, str):
            raise SignInRefused("code_refused", "The identity provider sent no identity token.")
        return token
