"""The SQL of bench/grow.py, one statement per constant, in the order a round runs them.

A round clones `copy` 1..k of some source people. Each map table gives, per (old row, copy), the
clone's new id and what its rows need (the person's time shift, whether it is purged). All are
temporary and dropped when the round's transaction ends.
"""

MAPS = """
CREATE TEMP TABLE person_map (
    old_ref text, copy int, new_ref text NOT NULL, shift interval NOT NULL,
    PRIMARY KEY (old_ref, copy)) ON COMMIT DROP;
CREATE TEMP TABLE notice_map (
    old_id uuid, copy int, new_id uuid NOT NULL, new_ref text NOT NULL, shift interval NOT NULL,
    purged_at timestamptz, PRIMARY KEY (old_id, copy)) ON COMMIT DROP;
CREATE TEMP TABLE consent_map (
    old_id uuid, copy int, new_id uuid NOT NULL, PRIMARY KEY (old_id, copy)) ON COMMIT DROP;
CREATE TEMP TABLE disclosure_map (
    old_id uuid, copy int, new_id uuid NOT NULL, PRIMARY KEY (old_id, copy)) ON COMMIT DROP;
CREATE TEMP TABLE message_map (
    old_id uuid, copy int, new_id uuid NOT NULL, notice_id uuid NOT NULL, new_ref text NOT NULL,
    recipient uuid NOT NULL, sequence bigint NOT NULL, shift interval NOT NULL,
    purged_at timestamptz, withheld boolean NOT NULL, PRIMARY KEY (old_id, copy)) ON COMMIT DROP;
CREATE TEMP TABLE delivery_map (
    old_id uuid, copy int, new_id uuid NOT NULL, message_id uuid NOT NULL, notice_id uuid NOT NULL,
    new_ref text NOT NULL, recipient uuid NOT NULL, shift interval NOT NULL, state text NOT NULL,
    delivered boolean NOT NULL, done_at timestamptz NOT NULL, latency_ms int NOT NULL,
    PRIMARY KEY (old_id, copy)) ON COMMIT DROP;
CREATE TEMP TABLE acknowledgement_map (
    old_id uuid, copy int, new_id uuid NOT NULL, PRIMARY KEY (old_id, copy)) ON COMMIT DROP;
CREATE TEMP TABLE id_map (
    old_id uuid, copy int, new_id uuid NOT NULL, PRIMARY KEY (old_id, copy)) ON COMMIT DROP;
CREATE TEMP TABLE sealed (id uuid PRIMARY KEY, key_id text NOT NULL, blob bytea NOT NULL)
    ON COMMIT DROP
"""

# $1: notices wanted, $2: days to spread over, $3: copies, $4: the source people's notices.
PEOPLE = """
INSERT INTO person_map
SELECT s.person_ref, c.copy, encode(sha256(uuid_send(gen_random_uuid())), 'hex'),
       -random() * $2::float8 * interval '1 day'
FROM source_person s CROSS JOIN generate_series(1, $3::int) AS c(copy)
WHERE (c.copy - 1) * $4::bigint + s.upto <= $1::bigint
"""

# $1: now, $2: retention days. A clone whose notice and messages are all older than the
# retention period is purged, about when the hourly purge would have come to it.
NOTICES = """
INSERT INTO notice_map
SELECT n.id, p.copy, gen_random_uuid(), p.new_ref, p.shift,
       CASE WHEN n.purged_at IS NULL
                 AND latest.at + p.shift < $1::timestamptz - $2::int * interval '1 day'
            THEN least(latest.at + p.shift + $2::int * interval '1 day'
                       + random() * interval '1 hour', $1::timestamptz) END
FROM source_notice n
JOIN person_map p ON p.old_ref = n.person_ref
LEFT JOIN (
    SELECT notice_id, max(created_at) AS at FROM source_message GROUP BY notice_id
) sent ON sent.notice_id = n.id
CROSS JOIN LATERAL (SELECT greatest(n.received_at, sent.at) AS at) latest
"""

CONSENTS = """
INSERT INTO consent_map
SELECT c.id, p.copy, gen_random_uuid()
FROM source_consent c JOIN person_map p ON p.old_ref = c.person_ref
"""

DISCLOSURES = """
INSERT INTO disclosure_map
SELECT d.id, nm.copy, gen_random_uuid()
FROM source_disclosure d JOIN notice_map nm ON nm.old_id = d.notice_id
"""

# Each recipient's inbox numbers go on from its counter, in the clones' time order. A clone is
# numbered (its deliveries are settled, and a delivery waits for its message's number) even
# where its original still waits for the sequencer: the sequencer numbers that one after them.
MESSAGES = """
INSERT INTO message_map
SELECT m.id, nm.copy, gen_random_uuid(), nm.new_id, nm.new_ref, m.recipient_organisation_id,
       o.message_sequence + row_number() OVER (
           PARTITION BY m.recipient_organisation_id
           ORDER BY m.created_at + nm.shift, m.stored_order, m.sequence
       ),
       nm.shift, nm.purged_at, m.revoked_at IS NOT NULL OR m.withdrawn_at IS NOT NULL
FROM source_message m
JOIN notice_map nm ON nm.old_id = m.notice_id
JOIN organisation o ON o.id = m.recipient_organisation_id
"""

# A pending delivery is settled as the worker would have: delivered a moment after it was
# queued, or, if its message was revoked or withdrawn meanwhile, withheld.
DELIVERIES = """
INSERT INTO delivery_map
SELECT d.id, mm.copy, gen_random_uuid(), mm.new_id, mm.notice_id, mm.new_ref, mm.recipient,
       mm.shift,
       CASE WHEN d.state <> 'pending' THEN d.state WHEN mm.withheld THEN 'revoked'
            ELSE 'delivered' END,
       d.state = 'pending' AND NOT mm.withheld,
       d.created_at + mm.shift + (0.05 + random() * 2) * interval '1 second',
       20 + floor(random() * 300)::int
FROM source_delivery d JOIN message_map mm ON mm.old_id = d.message_id
"""

ACKNOWLEDGEMENTS = """
INSERT INTO acknowledgement_map
SELECT a.id, mm.copy, gen_random_uuid()
FROM source_acknowledgement a JOIN message_map mm ON mm.old_id = a.message_id
"""

IDS = """
INSERT INTO id_map
SELECT old_id, copy, new_id FROM notice_map
UNION ALL SELECT old_id, copy, new_id FROM message_map
UNION ALL SELECT old_id, copy, new_id FROM acknowledgement_map
"""

# (the map a statement fills after the one before it is analysed, the statement)
ROW_MAPS = [
    ("notice_map", CONSENTS),
    ("consent_map", DISCLOSURES),
    ("disclosure_map", MESSAGES),
    ("message_map", DELIVERIES),
    ("delivery_map", ACKNOWLEDGEMENTS),
    ("acknowledgement_map", IDS),
]

# What stays sealed in a clone that is not purged: (old id, new id, key id, sealed value).
KEPT_SEALED = [
    (
        "release_notice",
        "body_sealed",
        """SELECT nm.old_id, nm.new_id, n.body_key_id, n.body_sealed
        FROM notice_map nm JOIN source_notice n ON n.id = nm.old_id
        WHERE nm.purged_at IS NULL AND n.body_sealed IS NOT NULL""",
    ),
    (
        "message",
        "jws_sealed",
        """SELECT mm.old_id, mm.new_id, m.jws_key_id, m.jws_sealed
        FROM message_map mm JOIN source_message m ON m.id = mm.old_id
        WHERE mm.purged_at IS NULL AND m.jws_sealed IS NOT NULL""",
    ),
    (
        "acknowledgement",
        "note_sealed",
        """SELECT am.old_id, am.new_id, a.note_key_id, a.note_sealed
        FROM acknowledgement_map am
        JOIN source_acknowledgement a ON a.id = am.old_id
        JOIN message_map mm ON mm.old_id = a.message_id AND mm.copy = am.copy
        WHERE mm.purged_at IS NULL AND a.note_sealed IS NOT NULL""",
    ),
]

# A clone's dates (its release, its appointments) move with its times, by whole days: the
# shift is the same for every row of the person, so the days between them stay the same. (Its
# sealed body keeps the original's dates, as it keeps every value but the row it names.)
INSERT_NOTICES = """
INSERT INTO release_notice (
    id, organisation_id, person_ref, series_id, version, supersedes_id, body_sealed, body_key_id,
    body_sha256, release_date, status, status_reason, received_at, cancelled_at, purged_at)
SELECT nm.new_id, n.organisation_id, nm.new_ref, series.new_id, n.version, earlier.new_id,
       CASE WHEN nm.purged_at IS NULL THEN coalesce(s.blob, n.body_sealed) END,
       CASE WHEN nm.purged_at IS NULL THEN coalesce(s.key_id, n.body_key_id) END,
       n.body_sha256, (n.release_date + nm.shift)::date, n.status, n.status_reason,
       n.received_at + nm.shift,
       n.cancelled_at + nm.shift, coalesce(nm.purged_at, n.purged_at + nm.shift)
FROM notice_map nm
JOIN source_notice n ON n.id = nm.old_id
JOIN notice_map series ON series.old_id = n.series_id AND series.copy = nm.copy
LEFT JOIN notice_map earlier ON earlier.old_id = n.supersedes_id AND earlier.copy = nm.copy
LEFT JOIN sealed s ON s.id = nm.new_id
"""

# A purged notice's keys are deleted; the others answer with the clone's ids (source_key's
# templates hold a format() argument in place of each id they name).
INSERT_IDEMPOTENCY_KEYS = """
INSERT INTO idempotency_key (
    organisation_id, key_sha256, request_sha256, status_code, response, location, notice_id,
    created_at)
SELECT k.organisation_id, encode(sha256(uuid_send(gen_random_uuid())), 'hex'), k.request_sha256,
       k.status_code, format(k.response_template, VARIADIC ids.new)::json,
       format(k.location_template, VARIADIC ids.new), nm.new_id, k.created_at + nm.shift
FROM source_key k
JOIN notice_map nm ON nm.old_id = k.notice_id
CROSS JOIN LATERAL (
    SELECT ARRAY(
        SELECT coalesce(m.new_id, o.old)::text
        FROM unnest(k.olds) WITH ORDINALITY AS o(old, at)
        LEFT JOIN id_map m ON m.old_id = o.old AND m.copy = nm.copy
        ORDER BY o.at
    ) AS new
) ids
WHERE nm.purged_at IS NULL
"""

INSERT_CONSENTS = """
INSERT INTO consent (
    id, person_ref, scope, decision, recorded_at, recorded_by, expires_at, organisation_id,
    notice_id, created_at, withdrawn_at, voided_at, withdrawn_by_organisation_id)
SELECT cm.new_id, p.new_ref, c.scope, c.decision, c.recorded_at + p.shift, c.recorded_by,
       c.expires_at + p.shift, c.organisation_id, nm.new_id, c.created_at + p.shift,
       c.withdrawn_at + p.shift, c.voided_at + p.shift, c.withdrawn_by_organisation_id
FROM consent_map cm
JOIN source_consent c ON c.id = cm.old_id
JOIN person_map p ON p.old_ref = c.person_ref AND p.copy = cm.copy
LEFT JOIN notice_map nm ON nm.old_id = c.notice_id AND nm.copy = cm.copy
"""

# The notices that carried each consent record: the clone's carry the clone's.
INSERT_CARRIERS = """
INSERT INTO consent_carrier (consent_id, notice_id, created_at)
SELECT cm.new_id, nm.new_id, k.created_at + nm.shift
FROM source_carrier k
JOIN notice_map nm ON nm.old_id = k.notice_id
JOIN consent_map cm ON cm.old_id = k.consent_id AND cm.copy = nm.copy
"""

INSERT_DISCLOSURES = """
INSERT INTO disclosure (
    id, notice_id, recipient_organisation_id, recipient_role, fields_sent, manifest, allowed,
    bases, consents_relied, policy_version, policy_hash, decided_at)
SELECT dm.new_id, nm.new_id, d.recipient_organisation_id, d.recipient_role, d.fields_sent,
       d.manifest, d.allowed, d.bases, d.consents_relied, d.policy_version, d.policy_hash,
       d.decided_at + nm.shift
FROM disclosure_map dm
JOIN source_disclosure d ON d.id = dm.old_id
JOIN notice_map nm ON nm.old_id = d.notice_id AND nm.copy = dm.copy
"""

INSERT_MESSAGES = """
INSERT INTO message (
    id, kind, notice_id, disclosure_id, supersedes_id, recipient_organisation_id, sequence,
    stored_order, jws_sealed, jws_key_id, created_at, purged_at, revoked_at, withdrawn_at)
SELECT mm.new_id, m.kind, mm.notice_id, dm.new_id, earlier.new_id, mm.recipient, mm.sequence,
       m.stored_order,
       CASE WHEN mm.purged_at IS NULL THEN coalesce(s.blob, m.jws_sealed) END,
       CASE WHEN mm.purged_at IS NULL THEN coalesce(s.key_id, m.jws_key_id) END,
       m.created_at + mm.shift, coalesce(mm.purged_at, m.purged_at + mm.shift),
       m.revoked_at + mm.shift, m.withdrawn_at + mm.shift
FROM message_map mm
JOIN source_message m ON m.id = mm.old_id
LEFT JOIN disclosure_map dm ON dm.old_id = m.disclosure_id AND dm.copy = mm.copy
LEFT JOIN message_map earlier ON earlier.old_id = m.supersedes_id AND earlier.copy = mm.copy
LEFT JOIN sealed s ON s.id = mm.new_id
"""

INSERT_SEQUENCES = """
UPDATE organisation o SET message_sequence = top.sequence
FROM (SELECT recipient, max(sequence) AS sequence FROM message_map GROUP BY recipient) top
WHERE o.id = top.recipient
"""

INSERT_DELIVERIES = """
INSERT INTO delivery (
    id, message_id, subscription_id, state, attempts, next_attempt_at, leased_until, lease_token,
    last_status_code, last_error, created_at, delivered_at)
SELECT x.new_id, x.message_id, d.subscription_id, x.state, d.attempts + x.delivered::int,
       d.next_attempt_at + x.shift,
       CASE WHEN d.state <> 'pending' THEN d.leased_until + x.shift END,
       CASE WHEN d.state <> 'pending' THEN d.lease_token END,
       CASE WHEN x.delivered THEN 200 ELSE d.last_status_code END,
       CASE WHEN x.delivered THEN NULL WHEN d.state = 'pending' THEN 'withheld'
            ELSE d.last_error END,
       d.created_at + x.shift,
       CASE WHEN x.delivered THEN x.done_at ELSE d.delivered_at + x.shift END
FROM delivery_map x JOIN source_delivery d ON d.id = x.old_id
"""

INSERT_ATTEMPTS = """
INSERT INTO delivery_attempt (delivery_id, attempted_at, status_code, latency_ms, error)
SELECT x.new_id, a.attempted_at + x.shift, a.status_code, a.latency_ms, a.error
FROM delivery_map x JOIN source_attempt a ON a.delivery_id = x.old_id
UNION ALL
SELECT x.new_id, x.done_at, 200, x.latency_ms, NULL FROM delivery_map x WHERE x.delivered
"""

INSERT_ACKNOWLEDGEMENTS = """
INSERT INTO acknowledgement (
    id, message_id, organisation_id, client_id, status, appointment_date, note_sealed,
    note_key_id, recorded_at)
SELECT am.new_id, mm.new_id, a.organisation_id, a.client_id, a.status,
       (a.appointment_date + mm.shift)::date,
       CASE WHEN mm.purged_at IS NULL THEN coalesce(s.blob, a.note_sealed) END,
       CASE WHEN mm.purged_at IS NULL THEN coalesce(s.key_id, a.note_key_id) END,
       a.recorded_at + mm.shift
FROM acknowledgement_map am
JOIN source_acknowledgement a ON a.id = am.old_id
JOIN message_map mm ON mm.old_id = a.message_id AND mm.copy = am.copy
LEFT JOIN sealed s ON s.id = am.new_id
"""

# Every entry about the person, with the clone's ids: in the columns, and in the details that
# name the person or a row of the clone (source_entry.template holds the details with a
# format() argument in place of each).
INSERT_ENTRIES = """
INSERT INTO audit_entry (
    recorded_at, action, actor_organisation_id, actor_client_id, notice_id, message_id,
    subject_organisation_id, details, person_ref)
SELECT e.recorded_at + p.shift, e.action, e.actor_organisation_id, e.actor_client_id,
       nm.new_id, mm.new_id, e.subject_organisation_id,
       CASE WHEN e.template IS NULL THEN e.details ELSE format(
           e.template, p.new_ref, coalesce(cm.new_id, e.consent_id),
           coalesce(dm.new_id, e.disclosure_id), coalesce(xm.new_id, e.delivery_id),
           coalesce(am.new_id, e.acknowledgement_id), coalesce(sn.new_id, sm.new_id, e.supersedes)
       )::json END,
       p.new_ref
FROM source_entry e
JOIN person_map p ON p.old_ref = e.person_ref
LEFT JOIN notice_map nm ON nm.old_id = e.notice_id AND nm.copy = p.copy
LEFT JOIN message_map mm ON mm.old_id = e.message_id AND mm.copy = p.copy
LEFT JOIN consent_map cm ON cm.old_id = e.consent_id AND cm.copy = p.copy
LEFT JOIN disclosure_map dm ON dm.old_id = e.disclosure_id AND dm.copy = p.copy
LEFT JOIN delivery_map xm ON xm.old_id = e.delivery_id AND xm.copy = p.copy
LEFT JOIN acknowledgement_map am ON am.old_id = e.acknowledgement_id AND am.copy = p.copy
LEFT JOIN notice_map sn ON sn.old_id = e.supersedes AND sn.copy = p.copy
LEFT JOIN message_map sm ON sm.old_id = e.supersedes AND sm.copy = p.copy
"""

# What the worker would have logged for each delivery settled here.
INSERT_DELIVERED_ENTRIES = """
INSERT INTO audit_entry (
    recorded_at, action, notice_id, message_id, subject_organisation_id, details, person_ref)
SELECT x.done_at, 'delivery.succeeded', x.notice_id, x.message_id, x.recipient,
       json_build_object(
           'delivery_id', x.new_id, 'attempt', d.attempts + 1, 'status_code', 200, 'error', NULL),
       x.new_ref
FROM delivery_map x JOIN source_delivery d ON d.id = x.old_id
WHERE x.delivered
"""

# $1: retention days. What retention logged for each clone purged here.
INSERT_PURGED_ENTRIES = """
INSERT INTO audit_entry (recorded_at, action, notice_id, details, person_ref)
SELECT nm.purged_at, 'notice.purged', nm.new_id,
       json_build_object('messages', coalesce(sent.ids, '[]'::json), 'retention_days', $1::int),
       nm.new_ref
FROM notice_map nm
LEFT JOIN (
    SELECT notice_id, json_agg(new_id::text ORDER BY new_id::text) AS ids
    FROM message_map GROUP BY notice_id
) sent ON sent.notice_id = nm.new_id
WHERE nm.purged_at IS NOT NULL
"""

INSERTS = [
    ("release_notice", INSERT_NOTICES),
    ("idempotency_key", INSERT_IDEMPOTENCY_KEYS),
    ("consent", INSERT_CONSENTS),
    ("consent_carrier", INSERT_CARRIERS),
    ("disclosure", INSERT_DISCLOSURES),
    ("organisation", INSERT_SEQUENCES),
    ("message", INSERT_MESSAGES),
    ("delivery", INSERT_DELIVERIES),
    ("delivery_attempt", INSERT_ATTEMPTS),
    ("acknowledgement", INSERT_ACKNOWLEDGEMENTS),
    ("audit_entry", INSERT_ENTRIES),
    ("audit_entry", INSERT_DELIVERED_ENTRIES),
]
