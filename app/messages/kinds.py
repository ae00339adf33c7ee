"""The kinds of signed message, and the JWS `typ` each is signed with (pure)."""

from __future__ import annotations

DISCLOSURE, CANCELLATION, CONSENT_WITHDRAWN = "disclosure", "cancellation", "consent_withdrawn"
TYP = {
    DISCLOSURE: "disclosure+jwt",
    CANCELLATION: "cancellation+jwt",
    CONSENT_WITHDRAWN: "consent-withdrawn+jwt",
}
