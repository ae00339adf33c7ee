"""The SQL of bench/grow.py that runs once, around the rounds: the snapshot of the people to
clone, the indexes set aside while the rounds run, and the foreign keys checked after them.
"""

# Every foreign key of the tables a round inserts into. Rounds run without the per-row checks
# (session_replication_role = replica): these are checked once, set-wise, after them.
FOREIGN_KEYS = """
SELECT c.conname, c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text, f.attname,
       cardinality(c.conkey)
FROM pg_constraint c
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
JOIN pg_attribute f ON f.attrelid = c.confrelid AND f.attnum = c.confkey[1]
WHERE c.contype = 'f' AND c.conrelid::regclass::text = ANY($1::text[])
ORDER BY 1
"""


def orphans(table: str, column: str, parent: str, key: str) -> str:
    """How many rows of `table` name in `column` a `parent` row that does not exist."""
    return (
        f'SELECT count(*) FROM "{table}" c WHERE c."{column}" IS NOT NULL'  # noqa: S608 - catalog names
        f' AND NOT EXISTS (SELECT 1 FROM "{parent}" p WHERE p."{key}" = c."{column}")'
    )


# The people to clone, and every row of theirs, copied once: each round reads these, never the
# tables it is growing. At most 50,000 notices (or the first person's).
SOURCES = """
CREATE TEMP TABLE source_person AS
SELECT person_ref, sum(count(*)) OVER (ORDER BY person_ref) AS upto
FROM release_notice WHERE person_ref IS NOT NULL GROUP BY person_ref;
DELETE FROM source_person
WHERE upto > greatest(50000, (SELECT min(upto) FROM source_person));
CREATE TEMP TABLE source_notice AS
SELECT n.* FROM release_notice n JOIN source_person p ON p.person_ref = n.person_ref;
CREATE TEMP TABLE source_consent AS
SELECT c.* FROM consent c JOIN source_person p ON p.person_ref = c.person_ref;
CREATE TEMP TABLE source_carrier AS
SELECT k.* FROM consent_carrier k JOIN source_notice n ON n.id = k.notice_id;
CREATE TEMP TABLE source_disclosure AS
SELECT d.* FROM disclosure d JOIN source_notice n ON n.id = d.notice_id;
CREATE TEMP TABLE source_message AS
SELECT m.* FROM message m JOIN source_notice n ON n.id = m.notice_id;
CREATE TEMP TABLE source_delivery AS
SELECT d.* FROM delivery d JOIN source_message m ON m.id = d.message_id;
CREATE TEMP TABLE source_attempt AS
SELECT a.* FROM delivery_attempt a JOIN source_delivery d ON d.id = a.delivery_id;
CREATE TEMP TABLE source_acknowledgement AS
SELECT a.* FROM acknowledgement a JOIN source_message m ON m.id = a.message_id;
CREATE TEMP TABLE source_key AS
SELECT k.* FROM idempotency_key k JOIN source_notice n ON n.id = k.notice_id;
CREATE TEMP TABLE source_entry AS
SELECT e.* FROM audit_entry e JOIN source_person p ON p.person_ref = e.person_ref;
ALTER TABLE source_entry
    ADD COLUMN consent_id uuid, ADD COLUMN disclosure_id uuid, ADD COLUMN delivery_id uuid,
    ADD COLUMN acknowledgement_id uuid, ADD COLUMN supersedes uuid, ADD COLUMN template text;
UPDATE source_entry SET
    consent_id = (details ->> 'consent_id')::uuid,
    disclosure_id = (details ->> 'disclosure_id')::uuid,
    delivery_id = (details ->> 'delivery_id')::uuid,
    acknowledgement_id = (details ->> 'acknowledgement_id')::uuid,
    supersedes = (details ->> 'supersedes')::uuid
WHERE action IN (
    'consent.recorded', 'consent.withdrawn', 'consent.voided', 'disclosure.decided',
    'message.signed', 'notice.received', 'notice.amended', 'delivery.succeeded',
    'delivery.failed', 'delivery.dead', 'acknowledgement.recorded');
UPDATE source_entry SET template = replace(replace(replace(replace(replace(replace(
    replace(details::text, '%', '%%'), person_ref, '%1$s'), coalesce(consent_id::text, ''), '%2$s'),
    coalesce(disclosure_id::text, ''), '%3$s'), coalesce(delivery_id::text, ''), '%4$s'),
    coalesce(acknowledgement_id::text, ''), '%5$s'), coalesce(supersedes::text, ''), '%6$s');
UPDATE source_entry SET template = NULL WHERE template = replace(details::text, '%', '%%');
CREATE FUNCTION pg_temp.templated(doc text, ids uuid[]) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    doc := replace(doc, '%', '%%');
    FOR at IN 1 .. coalesce(cardinality(ids), 0) LOOP
        doc := replace(doc, ids[at]::text, format('%%%s$s', at));
    END LOOP;
    RETURN doc;
END $$;
ALTER TABLE source_key
    ADD COLUMN olds uuid[], ADD COLUMN response_template text, ADD COLUMN location_template text;
UPDATE source_key SET olds = ARRAY(
    SELECT DISTINCT found[1]::uuid FROM regexp_matches(
        coalesce(response::text, '') || ' ' || coalesce(location, ''),
        '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', 'g') AS found);
UPDATE source_key SET response_template = pg_temp.templated(response::text, olds),
                      location_template = pg_temp.templated(location, olds);
CREATE INDEX ON source_person (upto);
CREATE INDEX ON source_notice (id);
CREATE INDEX ON source_message (id);
CREATE INDEX ON source_delivery (id);
ANALYZE source_person, source_notice, source_consent, source_carrier, source_disclosure,
    source_message, source_delivery, source_attempt, source_acknowledgement, source_key,
    source_entry
"""
DROP_SOURCES = """
DROP FUNCTION pg_temp.templated;
DROP TABLE source_person, source_notice, source_consent, source_carrier, source_disclosure,
    source_message, source_delivery, source_attempt, source_acknowledgement, source_key,
    source_entry
"""

# The indexes that no constraint needs, of the tables a round inserts into: dropped while the
# rounds run and built again after, which is much quicker than keeping them up row by row.
CLONED = [
    "release_notice",
    "idempotency_key",
    "consent",
    "consent_carrier",
    "disclosure",
    "message",
    "delivery",
    "delivery_attempt",
    "acknowledgement",
    "audit_entry",
]
SECONDARY_INDEXES = """
SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
WHERE t.relname = ANY($1::text[]) AND t.relnamespace = current_schema()::regnamespace
  AND NOT i.indisunique
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
ORDER BY 1
"""
