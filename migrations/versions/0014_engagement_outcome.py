"""engagement outcome: each release's outcome with each recipient, kept as acknowledgements arrive

One row per notice series and recipient that acknowledged a disclosure message of any of its
versions: the latest acknowledgement (by recorded_at, then id) and the days of every `attended`
(ISO, comma-separated, each once), so that the continuity-of-care report reads one row per release
instead of reducing acknowledgements at read time. From now on the acknowledgement use case
keeps it (app/messages/acknowledgements.py); here it is filled from the acknowledgements stored,
in one set-based INSERT ... SELECT.

Going down drops it: it is worked out again from the acknowledgements.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-23 09:00:00
"""

import sqlalchemy as sa
from alembic import op

from app.storage.columns import UTCDateTime


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

# A recipient's acknowledgements of the disclosure messages sent to it, with their series.
ACKNOWLEDGED = """
    FROM acknowledgement a
    JOIN message m ON m.id = a.message_id AND m.kind = 'disclosure'
        AND m.recipient_organisation_id = a.organisation_id
    JOIN release_notice n ON n.id = m.notice_id
"""

FILL = """
INSERT INTO engagement_outcome (
    series_id, organisation_id, latest_status, latest_appointment_date, latest_recorded_at,
    latest_acknowledgement_id, attended_days)
SELECT ranked.series_id, ranked.organisation_id, ranked.status, ranked.appointment_date,
       ranked.recorded_at, ranked.id, attended.days
FROM (
    SELECT n.series_id, a.organisation_id, a.status, a.appointment_date, a.recorded_at, a.id,
           row_number() OVER (
               PARTITION BY n.series_id, a.organisation_id
               ORDER BY a.recorded_at DESC, a.id DESC) AS newest
    {acknowledged}
) ranked
LEFT JOIN (
    SELECT n.series_id, a.organisation_id, {days} AS days
    {acknowledged}
    WHERE a.status = 'attended' AND a.appointment_date IS NOT NULL
    GROUP BY n.series_id, a.organisation_id
) attended
    ON attended.series_id = ranked.series_id AND attended.organisation_id = ranked.organisation_id
WHERE ranked.newest = 1
"""

# Each attended day once, as YYYY-MM-DD (SQLite stores dates so; its group_concat with DISTINCT
# joins with commas and takes no separator).
DAYS = {
    "postgresql": "string_agg(DISTINCT to_char(a.appointment_date, 'YYYY-MM-DD'), ',')",
    "sqlite": "group_concat(DISTINCT a.appointment_date)",
}


def upgrade() -> None:
    op.create_table(
        'engagement_outcome',
        sa.Column('series_id', sa.Uuid(), nullable=False),
        sa.Column('organisation_id', sa.Uuid(), nullable=False),
        sa.Column('latest_status', sa.String(length=32), nullable=False),
        sa.Column('latest_appointment_date', sa.Date(), nullable=True),
        sa.Column('latest_recorded_at', UTCDateTime(), nullable=False),
        sa.Column('latest_acknowledgement_id', sa.Uuid(), nullable=False),
        sa.Column('attended_days', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_engagement_outcome_organisation_id_organisation')),
        sa.ForeignKeyConstraint(['latest_acknowledgement_id'], ['acknowledgement.id'], name=op.f('fk_engagement_outcome_latest_acknowledgement_id_acknowledgement')),
        sa.PrimaryKeyConstraint('series_id', 'organisation_id', name=op.f('pk_engagement_outcome')),
    )
    bind = op.get_bind()
    days = DAYS[bind.dialect.name]
    bind.execute(sa.text(FILL.format(acknowledged=ACKNOWLEDGED, days=days)))


def downgrade() -> None:
    op.drop_table('engagement_outcome')
