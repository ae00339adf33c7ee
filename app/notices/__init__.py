"""A prison's release notices: the notice document (version 1), accepting, amending and
cancelling one (intake), what became of it (tracking), Idempotency-Key, retention, and the
documented examples.

Offers: `intake.accept_notice`, `amend_notice`, `cancel_notice`; `tracking.track`;
`document.ReleaseNotice` (the request body). Uses consent, messages, disclosure, access, audit.
"""
