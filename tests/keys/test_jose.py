"""Keys, signing and verification (app/keys/jose.py), checked with PyJWT as the independent
library."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm

from app.keys import jose, signing_keys

TYP = "at+jwt"
ISSUER = "http://exchange.test"
AUDIENCE = "http://exchange.test"


# --- helpers -----------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def private_pem(keys_dir: Path, kid: str) -> bytes:
    return (keys_dir / f"{kid}.pem").read_bytes()


def thumbprint(public_jwk: dict[str, Any]) -> str:
    """RFC 7638 for an EC key: SHA-256 of the required members, sorted, no whitespace."""
    required = {k: public_jwk[k] for k in ("crv", "kty", "x", "y")}
    canonical = json.dumps(required, sort_keys=True, separators=(",", ":")).encode()
    return b64url(hashlib.sha256(canonical).digest())


def pyjwt_public_jwk(pem: bytes) -> dict[str, Any]:
    """The public JWK of a PEM private key, as PyJWT exports it (not as the app does)."""
    private = serialization.load_pem_private_key(pem, password=None)
    return ECAlgorithm.to_jwk(private.public_key(), as_dict=True)


def jwk_by_kid(ring: jose.KeyRing, kid: str) -> dict[str, Any]:
    matches = [k for k in ring.jwks()["keys"] if k["kid"] == kid]
    assert len(matches) == 1
    return matches[0]


def pyjwt_verify(ring: jose.KeyRing, token: str, **kwargs: Any) -> dict[str, Any]:
    header = jwt.get_unverified_header(token)
    key = jwt.PyJWK(jwk_by_kid(ring, header["kid"])).key
    return jwt.decode(token, key, algorithms=["ES256"], **kwargs)


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    values = {"iss": ISSUER, "aud": AUDIENCE, "sub": "client-1", "iat": now, "exp": now + 300}
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


MESSAGE_TYP = "disclosure+jwt"
RECIPIENT = "N07"


def message_claims(**changes: Any) -> dict[str, Any]:
    """What the exchange signs for a recipient: no exp, since a message never expires."""
    values = {
        "iss": ISSUER,
        "aud": RECIPIENT,
        "iat": int(time.time()),
        "jti": "message-1",
        "notice_id": "notice-1",
        "disclosure": {"safeguarding": {"children_contact": "yes"}},
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def verify_message(ring: jose.KeyRing, token: str, typ: str = MESSAGE_TYP) -> dict[str, Any]:
    return jose.verify_message(ring, token, typ=typ, audience=RECIPIENT, issuer=ISSUER)


@dataclass
class Keys:
    dir: Path
    ring: jose.KeyRing

    @property
    def pem(self) -> bytes:
        return private_pem(self.dir, self.ring.current.kid)

    def token(self, key: Any = None, headers: dict[str, Any] | None = None, **changes: Any) -> str:
        """A token made by PyJWT: ES256 with the current key unless told otherwise."""
        head = {"kid": self.ring.current.kid, "typ": TYP, **(headers or {})}
        if head["kid"] is None:  # PyJWT refuses a null kid; leave it out instead
            del head["kid"]
        return jwt.encode(claims(**changes), key or self.pem, algorithm="ES256", headers=head)

    def message(
        self, key: Any = None, headers: dict[str, Any] | None = None, **changes: Any
    ) -> str:
        """A signed message made by PyJWT, as the exchange would sign it unless told otherwise."""
        head = {"kid": self.ring.current.kid, "typ": MESSAGE_TYP, **(headers or {})}
        head = {k: v for k, v in head.items() if v is not None}  # None: leave it out
        return jwt.encode(message_claims(**changes), key or self.pem, "ES256", headers=head)

    def verify(self, token: str) -> dict[str, Any]:
        return jose.verify_jwt(
            self.ring.verifiers(), token, typ=TYP, audience=AUDIENCE, issuer=ISSUER
        )


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    directory = tmp_path / "keys"
    return Keys(directory, jose.load_keyring(directory))


@pytest.fixture(scope="module")
def module_keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    directory = tmp_path_factory.mktemp("jose") / "keys"
    return Keys(directory, jose.load_keyring(directory))


# --- the key ring ------------------------------------------------------------------------------


def test_first_load_creates_one_owner_only_key(keys: Keys) -> None:
    pems = list(keys.dir.glob("*.pem"))
    assert len(pems) == 1
    assert stat.S_IMODE(pems[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(keys.dir.stat().st_mode) & 0o077 == 0
    assert pems[0].stem == keys.ring.current.kid
    assert (keys.dir / "current").read_text().strip() == keys.ring.current.kid


def test_jwks_publishes_the_public_key_under_its_rfc7638_thumbprint(keys: Keys) -> None:
    (published,) = keys.ring.jwks()["keys"]
    independent = pyjwt_public_jwk(keys.pem)
    assert published["kty"] == "EC"
    assert published["crv"] == "P-256"
    assert published["alg"] == "ES256"
    assert published["use"] == "sig"
    assert (published["x"], published["y"]) == (independent["x"], independent["y"])
    assert published["kid"] == thumbprint(independent) == keys.ring.current.kid
    assert "d" not in published  # never the private part
    json.dumps(keys.ring.jwks())  # serialisable as published


def test_loading_again_makes_no_second_key(keys: Keys) -> None:
    again = jose.load_keyring(keys.dir)
    assert len(list(keys.dir.glob("*.pem"))) == 1
    assert again.current.kid == keys.ring.current.kid
    assert again.jwks() == keys.ring.jwks()


def test_without_create_an_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        jose.load_keyring(tmp_path / "keys", create=False)
    assert not list(tmp_path.glob("keys/*.pem"))


def test_rotation_keeps_old_keys_published_and_verifying(keys: Keys) -> None:
    old_kid = keys.ring.current.kid
    old_token = jose.sign(keys.ring, claims(), typ=TYP)

    new_kid = signing_keys.new_signing_key(keys.dir)
    rotated = jose.load_keyring(keys.dir)

    assert new_kid != old_kid
    assert rotated.current.kid == new_kid
    assert {k["kid"] for k in rotated.jwks()["keys"]} == {old_kid, new_kid}
    assert stat.S_IMODE((keys.dir / f"{new_kid}.pem").stat().st_mode) == 0o600
    assert jwt.get_unverified_header(jose.sign(rotated, claims(), typ=TYP))["kid"] == new_kid
    # Signed before rotation, still verifiable after it: by the exchange and by PyJWT.
    assert jose.verify_jwt(
        rotated.verifiers(), old_token, typ=TYP, audience=AUDIENCE, issuer=ISSUER
    )
    assert pyjwt_verify(rotated, old_token, audience=AUDIENCE, issuer=ISSUER)["sub"] == "client-1"


def rotate(keys: Keys, retired_at: datetime, grace_days: int = 30) -> jose.KeyRing:
    """Rotate, record the old key as retired at retired_at, and load the ring as a restart would."""
    signing_keys.new_signing_key(keys.dir, now=retired_at)
    return jose.load_keyring(keys.dir, grace=timedelta(days=grace_days))


def test_rotation_records_when_the_old_key_was_retired_owner_only(keys: Keys) -> None:
    old_kid = keys.ring.current.kid
    at = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    rotated = rotate(keys, at)
    marker = keys.dir / f"{old_kid}.retired"
    assert marker.read_text().strip() == "2026-12-01T09:30:00Z"
    assert stat.S_IMODE(marker.stat().st_mode) == 0o600
    assert rotated.by_kid[old_kid].retired_at == at
    assert rotated.current.retired_at is None
    assert not list(keys.dir.glob("*.tmp"))  # written whole, then renamed into place


def test_the_old_key_is_published_within_its_grace_and_kept_for_good(keys: Keys) -> None:
    old_kid = keys.ring.current.kid
    old_token = jose.sign(keys.ring, claims(), typ=TYP)
    retired_at = datetime.now(UTC) - timedelta(days=10)
    ring = rotate(keys, retired_at, grace_days=10)
    new_kid = ring.current.kid
    within, after = retired_at + timedelta(days=10, seconds=-1), retired_at + timedelta(days=10)

    assert [k["kid"] for k in ring.jwks(within)["keys"]] == [new_kid, old_kid]
    assert ring.status(old_kid, within) == jose.GRACE
    assert [k["kid"] for k in ring.jwks(after)["keys"]] == [new_kid]
    assert ring.status(old_kid, after) == jose.RETIRED
    assert ring.status(new_kid, after) == jose.CURRENT
    assert ring.history() == [new_kid, old_kid]  # every key, always
    # An access token of the old key verifies while the key is in grace, and not after.
    verify = lambda now: jose.verify_jwt(  # noqa: E731
        ring.verifiers(now), old_token, typ=TYP, audience=AUDIENCE, issuer=ISSUER
    )
    assert verify(within)["sub"] == "client-1"
    with pytest.raises(jose.TokenError, match="unknown key"):
        verify(after)
    with pytest.raises(jose.TokenError, match="unknown key"):
        verify(None)  # now: ten days after the rotation, the grace is over


def test_a_message_signed_before_rotation_verifies_with_the_archived_key(keys: Keys) -> None:
    old_kid = keys.ring.current.kid
    signed = jose.sign(keys.ring, message_claims(), typ=MESSAGE_TYP)
    ring = rotate(keys, datetime.now(UTC) - timedelta(days=400), grace_days=1)
    assert old_kid not in {k["kid"] for k in ring.jwks()["keys"]}
    assert verify_message(ring, signed)["jti"] == "message-1"
    # And independently, with the public key the exchange keeps for it.
    archived = jwt.PyJWK(dict(ring.by_kid[old_kid].public_jwk)).key
    assert jwt.decode(signed, archived, algorithms=["ES256"], audience=RECIPIENT)["jti"] == (
        "message-1"
    )


def test_a_key_retired_before_retirement_was_recorded_is_kept_but_not_published(
    keys: Keys,
) -> None:
    old_kid = keys.ring.current.kid
    signing_keys.new_signing_key(keys.dir)
    (keys.dir / f"{old_kid}.retired").unlink()
    ring = jose.load_keyring(keys.dir)
    assert ring.status(old_kid, datetime.now(UTC)) == jose.RETIRED
    assert old_kid not in ring.verifiers() and old_kid in ring.archive


@pytest.mark.parametrize("mode", [0o640, 0o620, 0o604, 0o602, 0o644, 0o610])
def test_a_key_file_that_group_or_others_may_use_refuses_to_load(keys: Keys, mode: int) -> None:
    path = keys.dir / f"{keys.ring.current.kid}.pem"
    path.chmod(mode)
    with pytest.raises(signing_keys.KeyFileError) as refused:
        jose.load_keyring(keys.dir)
    assert str(path) in str(refused.value)
    assert "owner-only" in str(refused.value)
    path.chmod(0o400)  # read-only for its owner is fine
    assert jose.load_keyring(keys.dir).current.kid == keys.ring.current.kid


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda d, kid: (d / f"{kid}.retired").write_text("last tuesday"), "not an RFC 3339"),
        (lambda d, kid: (d / f"{kid}.retired").write_text("2026-12-01T09:00:00"), "offset"),
        (lambda d, kid: (d / f"{kid}.pem").rename(d / "renamed.pem"), "thumbprint"),
        (lambda d, kid: (d / "current").write_text("nope"), "has no key file"),
    ],
)
def test_a_damaged_key_directory_refuses_to_load_naming_the_file(
    keys: Keys, damage: Callable[[Path, str], object], says: str
) -> None:
    damage(keys.dir, keys.ring.current.kid)
    with pytest.raises(signing_keys.KeyFileError, match=says):
        jose.load_keyring(keys.dir)


# --- signing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("typ", ["disclosure+jwt", "at+jwt"])
def test_sign_verifies_with_pyjwt(keys: Keys, typ: str) -> None:
    payload = claims(notice_id="n-1", disclosure={"safeguarding": {"children_contact": "yes"}})
    token = jose.sign(keys.ring, payload, typ=typ)
    assert jwt.get_unverified_header(token) == {
        "alg": "ES256",
        "kid": keys.ring.current.kid,
        "typ": typ,
    }
    assert pyjwt_verify(keys.ring, token, audience=AUDIENCE, issuer=ISSUER) == payload


def test_sign_output_fails_pyjwt_with_another_key(keys: Keys, tmp_path: Path) -> None:
    token = jose.sign(keys.ring, claims(), typ=TYP)
    other = jose.load_keyring(tmp_path / "other")
    foreign = jwt.PyJWK(other.jwks()["keys"][0]).key
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, foreign, algorithms=["ES256"], audience=AUDIENCE)


# --- verification ------------------------------------------------------------------------------


def hand_made(header: dict[str, Any], payload: dict[str, Any], sign: Callable[[bytes], bytes]):
    signing_input = f"{b64json(header)}.{b64json(payload)}".encode()
    return f"{signing_input.decode()}.{b64url(sign(signing_input))}"


def alg_none(k: Keys, typ: str = TYP, payload: dict[str, Any] | None = None) -> str:
    header = {"alg": "none", "kid": k.ring.current.kid, "typ": typ}
    return hand_made(header, payload or claims(), lambda _: b"")


def hs256_with_public_pem(k: Keys, typ: str = TYP, payload: dict[str, Any] | None = None) -> str:
    private = serialization.load_pem_private_key(k.pem, password=None)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "kid": k.ring.current.kid, "typ": typ}
    mac = lambda m: hmac.new(public_pem, m, hashlib.sha256).digest()  # noqa: E731
    return hand_made(header, payload or claims(), mac)


def foreign_key(k: Keys) -> str:
    return k.token(key=ec.generate_private_key(ec.SECP256R1()))


def tampered_payload(k: Keys, token: str | None = None, payload: dict | None = None) -> str:
    header, _, signature = (token or k.token()).split(".")
    return f"{header}.{b64json(payload or claims(sub='someone-else'))}.{signature}"


def tampered_signature(k: Keys, token: str | None = None) -> str:
    header, payload, signature = (token or k.token()).split(".")
    flipped = bytearray(base64.urlsafe_b64decode(signature + "=="))
    flipped[0] ^= 1
    return f"{header}.{payload}.{b64url(bytes(flipped))}"


def oversized(k: Keys, make: Callable[..., str] | None = None) -> str:
    token = (make or k.token)(pad="x" * jose.MAX_TOKEN_BYTES)
    assert len(token) > jose.MAX_TOKEN_BYTES
    return token


REFUSED: dict[str, Callable[[Keys], str]] = {
    "alg-none": alg_none,
    "hs256-keyed-with-public-pem": hs256_with_public_pem,
    "foreign-key-real-kid": foreign_key,
    "unknown-kid": lambda k: k.token(headers={"kid": "not-a-key"}),
    "no-kid": lambda k: k.token(headers={"kid": None}),
    "tampered-payload": tampered_payload,
    "tampered-signature": tampered_signature,
    "wrong-typ": lambda k: k.token(headers={"typ": "disclosure+jwt"}),
    "no-typ": lambda k: k.token(headers={"typ": None}),
    "wrong-audience": lambda k: k.token(aud="http://elsewhere.test"),
    "audience-list-without-us": lambda k: k.token(aud=["http://elsewhere.test"]),
    "no-audience": lambda k: k.token(aud=None),
    "wrong-issuer": lambda k: k.token(iss="http://elsewhere.test"),
    "no-issuer": lambda k: k.token(iss=None),
    "expired-61s": lambda k: k.token(exp=int(time.time()) - 61),
    "expired-1h": lambda k: k.token(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
    "no-exp": lambda k: k.token(exp=None),
    "no-iat": lambda k: k.token(iat=None),
    "not-yet-valid": lambda k: k.token(nbf=int(time.time()) + 600),
    "oversized": oversized,
    "empty": lambda k: "",
    "two-segments": lambda k: "a.b",
    "words": lambda k: "not a token",
    "three-garbage-segments": lambda k: "a.b.c",
}


@pytest.mark.parametrize("make", REFUSED.values(), ids=REFUSED.keys())
def test_verify_jwt_refuses(keys: Keys, make: Callable[[Keys], str]) -> None:
    token = make(keys)
    with pytest.raises(jose.TokenError):
        keys.verify(token)


ACCEPTED: dict[str, Callable[[Keys], str]] = {
    "pyjwt-made": lambda k: k.token(),
    "exchange-made": lambda k: jose.sign(k.ring, claims(), typ=TYP),
    "expired-30s-within-skew": lambda k: k.token(exp=int(time.time()) - 30),
    "audience-in-list": lambda k: k.token(aud=["http://elsewhere.test", AUDIENCE]),
    "just-under-size-limit": lambda k: k.token(pad="x" * ((jose.MAX_TOKEN_BYTES - 2000) * 3 // 4)),
}


@pytest.mark.parametrize("make", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_verify_jwt_accepts(keys: Keys, make: Callable[[Keys], str]) -> None:
    token = make(keys)
    assert len(token) <= jose.MAX_TOKEN_BYTES
    verified = keys.verify(token)
    assert verified == jwt.decode(token, options={"verify_signature": False})
    assert verified["sub"] == "client-1"


# The same attacks on a signed message, refused by verify_message, which the exchange's messages
# are checked with (any key it ever signed with, typ per kind of message, aud the recipient).
MESSAGE_REFUSED: dict[str, tuple[Callable[[Keys], str], str]] = {
    "alg-none": (lambda k: alg_none(k, MESSAGE_TYP, message_claims()), "algorithm not allowed"),
    "hs256-keyed-with-public-pem": (
        lambda k: hs256_with_public_pem(k, MESSAGE_TYP, message_claims()),
        "algorithm not allowed",
    ),
    "foreign-key-real-kid": (
        lambda k: k.message(key=ec.generate_private_key(ec.SECP256R1())),
        "invalid token",
    ),
    "unknown-kid": (lambda k: k.message(headers={"kid": "not-a-key"}), "unknown key"),
    "no-kid": (lambda k: k.message(headers={"kid": None}), "unknown key"),
    "tampered-payload": (
        lambda k: tampered_payload(
            k, k.message(), message_claims(disclosure={"safeguarding": {"children_contact": "no"}})
        ),
        "invalid token",
    ),
    "tampered-signature": (lambda k: tampered_signature(k, k.message()), "invalid token"),
    "oversized": (lambda k: oversized(k, k.message), "too large"),
    "wrong-typ-an-access-token": (lambda k: k.message(headers={"typ": TYP}), "wrong token type"),
    "wrong-typ-a-cancellation": (
        lambda k: k.message(headers={"typ": "cancellation+jwt"}),
        "wrong token type",
    ),
    "no-typ": (lambda k: k.message(headers={"typ": None}), "wrong token type"),
    "another-recipient": (lambda k: k.message(aud="SMS-LEEDS"), "invalid token"),
    "no-audience": (lambda k: k.message(aud=None), "invalid token"),
    "wrong-issuer": (lambda k: k.message(iss="http://elsewhere.test"), "invalid token"),
    "no-jti": (lambda k: k.message(jti=None), "invalid token"),
    "no-iat": (lambda k: k.message(iat=None), "invalid token"),
    "iat-as-text": (lambda k: k.message(iat=str(int(time.time()))), "whole seconds"),
    "issued-in-the-future": (lambda k: k.message(iat=int(time.time()) + 3600), "future"),
    "expired-if-it-says-so": (lambda k: k.message(exp=int(time.time()) - 3600), "invalid token"),
    "an-encrypted-message-is-not-a-jws": (lambda k: "a.b.c.d.e", "malformed"),
    "empty": (lambda k: "", "malformed"),
}


@pytest.mark.parametrize(("make", "reason"), MESSAGE_REFUSED.values(), ids=MESSAGE_REFUSED.keys())
def test_verify_message_refuses(keys: Keys, make: Callable[[Keys], str], reason: str) -> None:
    token = make(keys)
    with pytest.raises(jose.TokenError, match=reason):
        verify_message(keys.ring, token)


@pytest.mark.parametrize("typ", ["disclosure+jwt", "cancellation+jwt", "consent-withdrawn+jwt"])
def test_verify_message_accepts_what_the_exchange_signed(keys: Keys, typ: str) -> None:
    payload = message_claims()
    signed = jose.sign(keys.ring, payload, typ=typ)
    assert verify_message(keys.ring, signed, typ=typ) == payload
    assert pyjwt_verify(keys.ring, signed, audience=RECIPIENT, issuer=ISSUER) == payload


def test_verify_message_accepts_pyjwt_made_without_exp(keys: Keys) -> None:
    token = keys.message()
    assert verify_message(keys.ring, token) == jwt.decode(
        token, options={"verify_signature": False}
    )


@settings(max_examples=150, deadline=None)
@given(
    token=st.one_of(
        st.text(max_size=200),
        st.from_regex(
            r"[A-Za-z0-9_-]{0,60}\.[A-Za-z0-9_-]{0,60}\.[A-Za-z0-9_-]{0,90}", fullmatch=True
        ),
    )
)
def test_property_garbage_is_always_a_token_error(module_keys: Keys, token: str) -> None:
    with pytest.raises(jose.TokenError):
        module_keys.verify(token)


def test_a_client_jwk_keeps_its_own_kid_and_a_pem_gets_its_thumbprint() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    given = json.loads(ECAlgorithm.to_jwk(private.public_key()))
    named, _ = jose.public_verifier(json.dumps({**given, "kid": "n07-key-1"}))
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    unnamed, _ = jose.public_verifier(pem.decode())
    assert named["kid"] == "n07-key-1"
    assert unnamed["kid"] == thumbprint(unnamed) != "n07-key-1"
    verifier = jose.verifier_from_jwk(named)
    now = int(time.time())
    claims = {"iss": "c", "aud": "a", "iat": now, "exp": now + 60}
    token = jwt.encode(claims, private, algorithm="ES256", headers={"kid": "n07-key-1"})
    assert jose.verify_jwt({verifier.kid: verifier}, token, typ=None, audience="a", issuer="c")


def test_a_token_issued_in_the_future_is_refused_whatever_its_lifetime(keys: Keys) -> None:
    with pytest.raises(jose.TokenError, match="future"):
        keys.verify(keys.token(iat=int(time.time()) + 3600, exp=int(time.time()) + 3660))
