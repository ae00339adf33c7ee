"""Release notices, their disclosures, messages, acknowledgements and deadlines, written in
set-based SQL (issue 24 item 6): a million messages in minutes, where the API would take hours.

Rows are shaped as intake writes them (app/notices/plan.py, app/messages/signed.py): a notice
(version 1 of its own series, accepted, its release date in clear) to a probation provider and a
substance misuse service, a disclosure and a numbered message to each, a `receipt` deadline on
each message and an `engagement` deadline on the service's (signed._deadline's columns). Sealed
bodies and JWSs are left out: neither the overdue scan nor the reports open them.

Two kinds of notice:

- settled: released over a past span; acknowledged as in life (the service: none 12%, received
  only 15%, then declined 8%, booked and did not attend 10%, booked and attended within the
  window 45%, booked outside it 10%; the probation provider: received 80%). A deadline an
  acknowledgement meets is met then (receipt: the first acknowledgement; engagement: attended
  within the window); one that passed unmet was alerted a little after it passed; one still to
  pass is open.
- fresh (the newest `fresh` notices): just received, not acknowledged but by the probation
  provider on `probation_received` of them; all their other deadlines open, due over the coming
  weeks. The scan's open set is theirs: `fresh` * 3 - `probation_received` deadlines.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

# $1 notices, $2 fresh, $3 prisons, $4 probation providers, $5 services, $6 first release day of
# the settled notices, $7 days they spread over, $8 now.
BASE = """
CREATE TEMP TABLE base AS
SELECT g.i, g.i > $1::int - $2::int AS fresh,
       gen_random_uuid() AS notice_id,
       gen_random_uuid() AS d_prob, gen_random_uuid() AS d_sms,
       gen_random_uuid() AS m_prob, gen_random_uuid() AS m_sms,
       ($3::uuid[])[1 + g.i % cardinality($3::uuid[])] AS prison,
       ($4::uuid[])[1 + (g.i / 7) % cardinality($4::uuid[])] AS probation,
       ($5::uuid[])[1 + (g.i / 3) % cardinality($5::uuid[])] AS service,
       random() AS r, random() AS r2, random() AS r3,
       CASE WHEN g.i > $1::int - $2::int
            THEN $8::timestamptz - random() * interval '1 day' END AS fresh_at,
       CASE WHEN g.i > $1::int - $2::int
            THEN ($8::timestamptz AT TIME ZONE 'Europe/London')::date + floor(random() * 14)::int
            ELSE $6::date + floor((g.i - 1)::float8 / greatest($1::int - $2::int, 1) * $7::int)::int
       END AS release_date
FROM generate_series(1, $1::int) AS g(i)
"""

# $1 now, $2 notices, $3 fresh, $4 of the fresh, acknowledged by the probation provider. Each
# acknowledgement's time and appointment day; an appointment attended or missed only once its
# day has come.
SPINE = """
CREATE TEMP TABLE spine AS
SELECT b.*, t.received_at, a.appt,
       CASE WHEN (NOT b.fresh AND b.r2 < 0.8) OR (b.fresh AND b.i <= $2::int - $3::int + $4::int)
            THEN least(t.received_at + b.r2 * interval '20 hours', $1::timestamptz) END
           AS prob_received_at,
       CASE WHEN NOT b.fresh AND b.r >= 0.12
            THEN least(t.received_at + b.r3 * interval '20 hours', $1::timestamptz) END
           AS sms_received_at,
       CASE WHEN NOT b.fresh AND b.r >= 0.27 AND b.r < 0.35
            THEN least(t.received_at + interval '2 days', $1::timestamptz) END AS declined_at,
       CASE WHEN NOT b.fresh AND b.r >= 0.35
            THEN least(t.received_at + interval '1 day', $1::timestamptz) END AS booked_at,
       CASE WHEN NOT b.fresh AND b.r >= 0.35 AND b.r < 0.45 AND a.appt <= a.today
            THEN least((a.appt + interval '34 hours') AT TIME ZONE 'Europe/London', $1::timestamptz)
            END AS dna_at,
       CASE WHEN NOT b.fresh AND b.r >= 0.45 AND b.r < 0.90 AND a.appt <= a.today
            THEN least((a.appt + interval '34 hours') AT TIME ZONE 'Europe/London', $1::timestamptz)
            END AS attended_at
FROM base b
CROSS JOIN LATERAL (
    SELECT coalesce(b.fresh_at, (b.release_date - b.r2 * 14 * interval '1 day'
                    + interval '9 hours') AT TIME ZONE 'Europe/London') AS received_at
) t
CROSS JOIN LATERAL (
    SELECT CASE WHEN b.r < 0.90 THEN b.release_date + floor(b.r3 * 22)::int
                ELSE b.release_date + 22 + floor(b.r3 * 19)::int END AS appt,
           ($1::timestamptz AT TIME ZONE 'Europe/London')::date AS today
) a
"""

NOTICES = """
INSERT INTO release_notice (
    id, organisation_id, person_ref, series_id, version, body_sha256, release_date, status,
    received_at)
SELECT notice_id, prison, encode(sha256(uuid_send(notice_id)), 'hex'), notice_id, 1,
       encode(sha256(uuid_send(d_prob)), 'hex'), release_date, 'accepted', received_at
FROM spine
"""

# $1 policy version, $2 policy hash.
DISCLOSURES = """
INSERT INTO disclosure (
    id, notice_id, recipient_organisation_id, recipient_role, fields_sent, manifest,
    policy_version, policy_hash, decided_at)
SELECT d, notice_id, recipient, role, '[]'::json, '[]'::json, $1, $2, received_at
FROM spine CROSS JOIN LATERAL (VALUES
    (d_prob, probation, 'probation_provider'),
    (d_sms, service, 'substance_misuse_service')
) AS x(d, recipient, role)
"""

# Numbered, as the sequencer would have by now: each recipient's inbox in time order.
MESSAGES = """
INSERT INTO message (
    id, kind, notice_id, disclosure_id, recipient_organisation_id, sequence, stored_order,
    created_at)
SELECT m, 'disclosure', notice_id, d, recipient,
       row_number() OVER (PARTITION BY recipient ORDER BY received_at, stored, m), stored,
       received_at
FROM spine CROSS JOIN LATERAL (VALUES
    (m_prob, d_prob, probation, 0), (m_sms, d_sms, service, 1)
) AS x(m, d, recipient, stored)
"""

SEQUENCES = """
UPDATE organisation o SET message_sequence = top.sequence
FROM (SELECT recipient_organisation_id AS id, max(sequence) AS sequence FROM message
      GROUP BY recipient_organisation_id) top
WHERE o.id = top.id
"""

ACKNOWLEDGEMENTS = """
INSERT INTO acknowledgement (
    id, message_id, organisation_id, client_id, status, appointment_date, recorded_at, late)
SELECT gen_random_uuid(), m, recipient, 'bench-case-system', status, day, at, false
FROM spine CROSS JOIN LATERAL (VALUES
    (m_prob, probation, 'received', NULL::date, prob_received_at),
    (m_sms, service, 'received', NULL::date, sms_received_at),
    (m_sms, service, 'declined', NULL::date, declined_at),
    (m_sms, service, 'appointment_booked', appt, booked_at),
    (m_sms, service, 'did_not_attend', appt, dna_at),
    (m_sms, service, 'attended', appt, attended_at)
) AS x(m, recipient, status, day, at)
WHERE at IS NOT NULL
"""

# Each release's outcome with each recipient, as the acknowledgement use case keeps it (the
# latest acknowledgement, the attended days): migration 0014's fill, on PostgreSQL. The tables
# it reads are analysed first: unanalysed in this transaction, they were planned as nested
# loops that ran for over ten minutes.
OUTCOMES = """
ANALYZE release_notice, message, acknowledgement;
INSERT INTO engagement_outcome (
    series_id, organisation_id, latest_status, latest_appointment_date, latest_recorded_at,
    latest_acknowledgement_id, attended_days)
SELECT r.series_id, r.organisation_id, r.status, r.appointment_date, r.recorded_at, r.id,
       attended.days
FROM (
    SELECT n.series_id, a.organisation_id, a.status, a.appointment_date, a.recorded_at, a.id,
           row_number() OVER (PARTITION BY n.series_id, a.organisation_id
                              ORDER BY a.recorded_at DESC, a.id DESC) AS newest
    FROM acknowledgement a
    JOIN message m ON m.id = a.message_id AND m.kind = 'disclosure'
        AND m.recipient_organisation_id = a.organisation_id
    JOIN release_notice n ON n.id = m.notice_id
) r
LEFT JOIN (
    SELECT n.series_id, a.organisation_id,
           string_agg(DISTINCT to_char(a.appointment_date, 'YYYY-MM-DD'), ',') AS days
    FROM acknowledgement a
    JOIN message m ON m.id = a.message_id AND m.kind = 'disclosure'
        AND m.recipient_organisation_id = a.organisation_id
    JOIN release_notice n ON n.id = m.notice_id
    WHERE a.status = 'attended' AND a.appointment_date IS NOT NULL
    GROUP BY n.series_id, a.organisation_id
) attended ON attended.series_id = r.series_id AND attended.organisation_id = r.organisation_id
WHERE r.newest = 1
"""

# $1 now, $2 the window's days. Receipt: the next day in England and Wales (the working-day
# calendar is not worth its cost here); engagement: the window's last day. Met by the first
# acknowledgement (an attended one within the window); else alerted 40 s after it passed, or
# open. A fresh notice's open deadlines fall due over the coming weeks.
DEADLINES = """
INSERT INTO deadline (
    id, kind, message_id, notice_id, series_id, organisation_id, due_on, due_at, created_at,
    met_at, alerted_at)
SELECT gen_random_uuid(), kind, m, notice_id, notice_id, recipient, due.day,
       (due.day + 1)::timestamp AT TIME ZONE 'Europe/London', received_at, met,
       CASE WHEN met IS NULL AND (due.day + 1)::timestamp AT TIME ZONE 'Europe/London' <= $1
            THEN (due.day + 1)::timestamp AT TIME ZONE 'Europe/London' + interval '40 seconds'
       END
FROM spine
CROSS JOIN LATERAL (VALUES
    ('receipt', m_prob, probation, (received_at AT TIME ZONE 'Europe/London')::date + 1,
     prob_received_at, ($1::timestamptz + (3 + r2 * 45) * interval '1 hour')),
    ('receipt', m_sms, service, (received_at AT TIME ZONE 'Europe/London')::date + 1,
     sms_received_at, ($1::timestamptz + (3 + r3 * 45) * interval '1 hour')),
    ('engagement', m_sms, service, release_date + $2::int,
     CASE WHEN appt <= release_date + $2::int THEN attended_at END,
     ($1::timestamptz + (1 + r * 34) * interval '1 day'))
) AS x(kind, m, recipient, settled_day, met, fresh_due)
CROSS JOIN LATERAL (
    SELECT CASE WHEN fresh AND met IS NULL
                THEN (fresh_due AT TIME ZONE 'Europe/London')::date
                ELSE settled_day END AS day
) due
"""

ORGANISATION = """
INSERT INTO organisation (id, code, kind, name, message_sequence, created_at)
VALUES ($1, $2, $3, $4, 0, $5)
"""

SUBSCRIPTION = """
INSERT INTO subscription (id, organisation_id, url, secret, status, created_at)
SELECT gen_random_uuid(), id, 'http://127.0.0.1:9/hooks/' || code,
       'whsec_' || encode(sha256(uuid_send(gen_random_uuid())), 'base64'), 'active', $1
FROM organisation WHERE kind = ANY($2::text[])
"""

STEPS = [
    ("release_notice", NOTICES),
    ("disclosure", DISCLOSURES),
    ("message", MESSAGES),
    ("organisation", SEQUENCES),
    ("acknowledgement", ACKNOWLEDGEMENTS),
    ("engagement_outcome", OUTCOMES),
    ("deadline", DEADLINES),
]


@dataclass(frozen=True)
class Shape:
    """What to write: `notices` (two messages each), the newest `fresh` of them just received,
    `probation_received` of those acknowledged by the probation provider; the settled ones
    released from `first_day` over `span_days`."""

    notices: int
    fresh: int
    probation_received: int
    first_day: date
    span_days: int

    @classmethod
    def scan(cls, messages: int, open_deadlines: int, today: date) -> Shape:
        """`messages` messages with exactly `open_deadlines` open, all of them fresh notices'
        (half of which the probation provider has acknowledged): a settled year before them,
        its last release five weeks ago, so that every settled deadline has passed."""
        fresh = math.ceil(open_deadlines / 2.5)
        return cls(
            notices=messages // 2,
            fresh=fresh,
            probation_received=3 * fresh - open_deadlines,
            first_day=date.fromordinal(today.toordinal() - 400),
            span_days=365,
        )


async def organisations(
    connection: asyncpg.Connection, *, prefix: str, kind: str, count: int, now: datetime
) -> list[uuid.UUID]:
    """`count` more organisations of a kind (codes prefix001, ...): their ids."""
    ids = [uuid.uuid4() for _ in range(count)]
    for n, id_ in enumerate(ids, 1):
        await connection.execute(ORGANISATION, id_, f"{prefix}{n:03d}", kind, f"{prefix} {n}", now)
    return ids


async def by_code(connection: asyncpg.Connection, *codes: str) -> list[uuid.UUID]:
    rows = await connection.fetch("SELECT id FROM organisation WHERE code = ANY($1)", list(codes))
    return [row["id"] for row in rows]


async def fill(
    dsn: str,
    shape: Shape,
    *,
    prisons: list[uuid.UUID],
    probation: list[uuid.UUID],
    services: list[uuid.UUID],
    now: datetime,
    window_days: int = 21,
) -> dict[str, int]:
    """Write the notices in one transaction, then VACUUM ANALYZE: rows written, by table."""
    connection = await asyncpg.connect(dsn)
    written: dict[str, int] = {}
    try:
        async with connection.transaction():
            await connection.execute(
                BASE,
                shape.notices,
                shape.fresh,
                prisons,
                probation,
                services,
                shape.first_day,
                shape.span_days,
                now,
            )
            await connection.execute(
                SPINE, now, shape.notices, shape.fresh, shape.probation_received
            )
            await connection.execute("ANALYZE spine")
            arguments = {
                DISCLOSURES: ("bench", "0" * 64),
                DEADLINES: (now, window_days),
            }
            for table, statement in STEPS:
                status = await connection.execute(statement, *arguments.get(statement, ()))
                written[table] = written.get(table, 0) + int(status.split()[-1])
            await connection.execute(
                SUBSCRIPTION, now, ["probation_provider", "substance_misuse_service", "prison"]
            )
            await connection.execute("DROP TABLE spine; DROP TABLE base")
        await connection.execute("VACUUM ANALYZE")
        return written
    finally:
        await connection.close()
