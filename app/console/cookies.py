"""The console's signed cookies (itsdangerous: an HMAC with the deployment's own secret and a
timestamp): the session, and a sign-in under way. A cookie signed by another deployment, or
changed, or older than it may be, is refused. The session holds a CSRF token that every form
sends back. No web framework here."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

SESSION = "console_session"
ATTEMPT = "console_signin"
ATTEMPT_SECONDS = 600  # from the authorization request to the callback


class CookieRefused(Exception):
    """A cookie that is not ours, changed, or too old: `reason` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Cookies:
    def __init__(self, secret: str, session_seconds: int) -> None:
        self._session = URLSafeTimedSerializer(secret, salt="nps-exchange console session")
        self._attempt = URLSafeTimedSerializer(secret, salt="nps-exchange console sign-in")
        self.session_seconds = session_seconds

    def seal_session(self, data: dict[str, Any]) -> str:
        return self._session.dumps(
            {**data, "sid": secrets.token_urlsafe(32), "csrf": secrets.token_urlsafe(32)}
        )

    def open_session(self, value: str) -> dict[str, Any]:
        data = _open(self._session, value, self.session_seconds)
        if not isinstance(data.get("sid"), str) or not isinstance(data.get("csrf"), str):
            raise CookieRefused("bad_signature")  # made before sessions had IDs: sign in again
        return data

    def seal_attempt(self, data: dict[str, Any]) -> str:
        return self._attempt.dumps(data)

    def open_attempt(self, value: str) -> dict[str, Any]:
        return _open(self._attempt, value, ATTEMPT_SECONDS)


def _open(serializer: URLSafeTimedSerializer, value: str, max_age: int) -> dict[str, Any]:
    try:
        data = serializer.loads(value, max_age=max_age)
    except SignatureExpired as error:
        raise CookieRefused("expired") from error
    except BadSignature as error:
        raise CookieRefused("bad_signature") from error
    if not isinstance(data, dict):
        raise CookieRefused("bad_signature")
    return data


def csrf_matches(session: dict[str, Any], given: str | None) -> bool:
    expected = session.get("csrf")
    return bool(
        isinstance(expected, str)
        and given
        and hmac.compare_digest(expected.encode(), given.encode())
    )
