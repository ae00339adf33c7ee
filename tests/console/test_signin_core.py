"""The pure parts of signing in, table-driven: the ID token's checks (forged, expired, for
another service, from another issuer, replayed with another nonce, unsigned), PKCE, the return
address (no open redirect), and the signed cookies (another deployment's, expired)."""

from __future__ import annotations

import base64
import hashlib
import json
import time

import jwt
import pytest
import time_machine
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.responses import Response
from jwt.algorithms import RSAAlgorithm

from app.console import signin
from app.console.cookies import CookieRefused, Cookies, csrf_matches
from app.console.signin import SignInRefused
from app.console.web import Console, clear_cookie, set_cookie
from app.keys import jose

ISSUER = "http://127.0.0.1:9090"
CLIENT = "nps-exchange-console"
NONCE = "n-0S6_WzA2Mj"


def _key():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
    _, verifier = jose.public_verifier(json.dumps(public))
    return private, jose.Verifier("k1", verifier.alg, verifier.key)


PRIVATE, VERIFIER = _key()
OTHER, _ = _key()


def _token(key=PRIVATE, alg="RS256", kid="k1", **changes):
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": CLIENT,
        "sub": "auditor-alice",
        "iat": now,
        "exp": now + 300,
        "nonce": NONCE,
        "organisation": "AUDIT",
        **changes,
    }
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def _check(token, nonce=NONCE):
    return signin.check_id_token(
        {"k1": VERIFIER}, token, issuer=ISSUER, client_id=CLIENT, nonce=nonce
    )


def test_a_good_id_token_is_accepted():
    claims = _check(_token())
    assert claims["sub"] == "auditor-alice"
    person = signin.person_of(claims, organisation_claim="organisation", role_claim="role")
    assert person == signin.Person("auditor-alice", "AUDIT", None)
    assert person.actor == "person:auditor-alice"


HOUR = 3600


@pytest.mark.parametrize(
    ("made", "reason"),
    [
        # forged: signed by another key, under the provider's kid
        (lambda now: _token(key=OTHER), "bad_id_token"),
        (lambda now: _token(exp=now - HOUR, iat=now - 2 * HOUR), "bad_id_token"),  # expired
        (lambda now: _token(iat=now + HOUR, exp=now + 2 * HOUR), "bad_id_token"),  # future
        (lambda now: _token(aud="another-service"), "bad_id_token"),
        (lambda now: _token(iss="http://evil.example"), "bad_id_token"),  # an unknown issuer
        (lambda now: _token(kid="unknown"), "bad_id_token"),
        (lambda now: _token(sub=None), "bad_id_token"),
        (lambda now: _token(nonce="a-replayed-token"), "wrong_nonce"),
        (lambda now: _token(nonce=None), "wrong_nonce"),
        (lambda now: _token(azp="another-service"), "bad_id_token"),
        # for several audiences: azp must be present and be the console (Core 3.1.3.7 (3)-(5))
        (lambda now: _token(aud=[CLIENT, "another-service"]), "bad_id_token"),
        (
            lambda now: _token(aud=[CLIENT, "another-service"], azp="another-service"),
            "bad_id_token",
        ),
        (lambda now: _token(aud=["another-service"], azp=CLIENT), "bad_id_token"),
        (lambda now: "not a token", "bad_id_token"),
    ],
)
def test_a_bad_id_token_is_refused(made, reason):
    """Each token made as the test runs (made at collection, it could expire before)."""
    with pytest.raises(SignInRefused) as refused:
        _check(made(int(time.time())))
    assert refused.value.reason == reason


@pytest.mark.parametrize(
    ("role", "kept"),
    [("auditor", "auditor"), ("a" * 64, "a" * 64), ("a" * 65, None), ("x\ny", None), (7, None)],
)
def test_a_role_is_kept_only_when_short_and_printable(role, kept):
    claims = {"sub": "auditor-alice", "organisation": "AUDIT", "role": role}
    person = signin.person_of(claims, organisation_claim="organisation", role_claim="role")
    assert person.role == kept


def test_a_token_for_the_console_among_others_names_it_as_azp():
    assert _check(_token(aud=[CLIENT, "another-service"], azp=CLIENT))["sub"] == "auditor-alice"
    assert _check(_token(aud=[CLIENT]))["sub"] == "auditor-alice"


def test_an_unsigned_or_hmac_token_is_refused():
    header = base64.urlsafe_b64encode(b'{"alg":"none","kid":"k1"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(json.dumps({"iss": ISSUER}).encode()).rstrip(b"=").decode()
    with pytest.raises(SignInRefused):
        _check(f"{header}.{body}.")
    with pytest.raises(SignInRefused):
        _check(_token(key="a shared secret, not the provider's key", alg="HS256"))


def test_pkce_s256_is_rfc_7636s():
    # RFC 7636 appendix B
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert signin.code_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    attempt = signin.Attempt.start("/console/log")
    assert 43 <= len(attempt.verifier) <= 128 and attempt.state != attempt.nonce
    url = signin.authorization_url(
        ISSUER + "/auth",
        client_id=CLIENT,
        redirect_uri="http://x/console/callback",
        attempt=attempt,
    )
    expected = (
        base64.urlsafe_b64encode(hashlib.sha256(attempt.verifier.encode()).digest())
        .rstrip(b"=")
        .decode()
    )
    assert f"code_challenge={expected}" in url and "code_challenge_method=S256" in url
    assert attempt.verifier not in url


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("/console/log?action=notice.received", "/console/log?action=notice.received"),
        ("/console/", "/console/"),
        ("https://evil.example/console/", "/console/"),
        ("//evil.example/console/", "/console/"),
        ("/console/\\evil.example", "/console/"),
        ("/\\evil.example", "/console/"),
        ("/console/../../evil", "/console/"),
        ("/consoleevil", "/console/"),
        ("javascript:alert(1)", "/console/"),
        ("/console/\r\nSet-Cookie: x=1", "/console/"),
        (None, "/console/"),
        (42, "/console/"),
    ],
)
def test_the_return_address_stays_in_the_console(given, kept):
    assert signin.safe_return_to(given) == kept


def test_a_wrong_state_is_refused():
    attempt = signin.Attempt.start(None)
    signin.check_state(attempt, attempt.state)
    for state in (None, "", attempt.state + "x", attempt.nonce):
        with pytest.raises(SignInRefused) as refused:
            signin.check_state(attempt, state)
        assert refused.value.reason == "wrong_state"


@pytest.mark.parametrize("kind", ["prison", "probation_provider", "substance_misuse_service"])
def test_only_auditors_and_operators_come_in(kind):
    every = ["audit:read", "reports:read", "admin", "metrics:read", "release-notices:write"]
    assert signin.admitted("auditor", disabled=False, client_scopes=every) == {
        "audit:read",
        "reports:read",
    }
    with pytest.raises(SignInRefused):
        signin.admitted(kind, disabled=False, client_scopes=every)
    with pytest.raises(SignInRefused):
        signin.admitted("operator", disabled=True, client_scopes=every)


def test_a_person_holds_their_organisations_clients_scopes_and_no_more():
    assert signin.admitted("operator", disabled=False, client_scopes=["metrics:read"]) == {
        "metrics:read"
    }
    for none in ([], ["release-notices:write"]):  # no client, or none with a scope of the kind
        with pytest.raises(SignInRefused) as refused:
            signin.admitted("auditor", disabled=False, client_scopes=none)
        assert refused.value.reason == "no_scopes_refused"


def test_a_cookie_of_another_deployment_or_too_old_is_refused():
    ours = Cookies("this deployment's secret, long enough to sign", 60)
    theirs = Cookies("another deployment's secret, long enough too", 60)
    sealed = theirs.seal_session({"sub": "auditor-alice", "org": "AUDIT"})
    with pytest.raises(CookieRefused) as refused:
        ours.open_session(sealed)
    assert refused.value.reason == "bad_signature"
    with pytest.raises(CookieRefused):
        ours.open_session(sealed[:-2] + "xx")
    with time_machine.travel(time.time() - 120, tick=False):
        old = ours.seal_session({"sub": "auditor-alice", "org": "AUDIT"})
    with pytest.raises(CookieRefused) as refused:
        ours.open_session(old)
    assert refused.value.reason == "expired"
    fresh = ours.open_session(ours.seal_session({"sub": "a", "org": "AUDIT"}))
    assert csrf_matches(fresh, fresh["csrf"]) and not csrf_matches(fresh, None)
    assert not csrf_matches(fresh, "forged")


def test_over_https_the_cookies_are_host_only_and_secure():
    for secure, name, path in [
        (True, "__Host-console_session", "/"),
        (False, "console_session", "/console"),
    ]:
        console = Console(None, None, None, None, secure)  # type: ignore[arg-type]
        response = Response()
        set_cookie(response, console, name="console_session", value="v", max_age=60)
        clear_cookie(response, console, "console_session")
        for header in response.headers.getlist("set-cookie"):
            assert header.startswith(name + "=") and f"Path={path}" in header
            assert ("Secure" in header) == secure and "HttpOnly" in header
