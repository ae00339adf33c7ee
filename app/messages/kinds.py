"""The kinds of signed message, and the JWS `typ` each is signed with (pure)."""

from __future__ import annotations

DISCLOSURE, CANCELLATION, CONSENT_WITHDRAWN = "disclosure", "cancellation", "consent_withdrawn"
# The alerts of deadlines (app/alerts): ids, codes and days only.
RECEIPT_OVERDUE, ENGAGEMENT_OVERDUE = "receipt_overdue", "engagement_overdue"
ENGAGEMENT_AT_RISK = "engagement_at_risk"
ALERTS = (RECEIPT_OVERDUE, ENGAGEMENT_OVERDUE, ENGAGEMENT_AT_RISK)
# A care update one recipient of a release shares with the other (app/updates).
CARE_UPDATE = "care_update"
TYP = {
    DISCLOSURE: "disclosure+jwt",
    CANCELLATION: "cancellation+jwt",
    CONSENT_WITHDRAWN: "consent-withdrawn+jwt",
    RECEIPT_OVERDUE: "receipt-overdue+jwt",
    ENGAGEMENT_OVERDUE: "engagement-overdue+jwt",
    ENGAGEMENT_AT_RISK: "engagement-at-risk+jwt",
    CARE_UPDATE: "care-update+jwt",
}
