"""A large exchange log for the benchmark harness (issue 8 item 5): fill, then sequence.

`fill` writes audit entries straight into an already-migrated PostgreSQL database with COPY,
shaped as the exchange writes them for a notice (received, consent recorded, and per recipient:
disclosure decided, message signed, delivery queued, attempted, delivered, acknowledged), plus
auditors' consultations, in time order over a year ending now. Every entry about a notice names
its person by the data dir's real keyed hash (DataKeys.person_ref), as audit.append does.
`sequence_all` then runs the worker's own sequencer and checkpointer until the whole log is in
the tree under a signed checkpoint. Nothing personal is printed: NOMS numbers are returned only.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import random
import string
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from app.audit import tree as log_tree
from app.audit.signer import load_log_signer
from app.keys.sealing import load_data_keys
from app.settings import Settings
from app.storage.db import make_engine, make_sessionmaker
from app.wire.canonical import canonical_json
from app.worker.loop import advance_log
from bench.world import asyncpg_dsn

COLUMNS = (
    "recorded_at",
    "action",
    "actor_organisation_id",
    "actor_client_id",
    "notice_id",
    "message_id",
    "subject_organisation_id",
    "details",
    "person_ref",
)
BATCH = 20_000  # rows per COPY
SAMPLE = 1000  # NOMS numbers returned for person queries
YEAR = timedelta(days=365)
POLICY_VERSION = "2026-11-22.2"
POLICY_HASH = hashlib.sha256(b"consent/release-notice.yaml").hexdigest()
ROLES = {  # what each kind of recipient is sent and what is withheld from it, by rule
    "probation_provider": (
        ["/person", "/release", "/release_plan", "/nps_use", "/wider_needs", "/consent"],
        "probation.supervision",
        [("/nps_use/treatment_in_custody/clinical_notes", "probation.clinical-notes")],
        "consent_not_given",
    ),
    "substance_misuse_service": (
        ["/person", "/release", "/release_plan", "/nps_use", "/safeguarding", "/consent"],
        "sms.continuity-of-care",
        [("/person/pnc_number", "sms.no-criminal-record-identifiers")],
        "not_necessary",
    ),
}


def noms_numbers(rng: random.Random, count: int) -> list[str]:
    """count distinct NOMS numbers: a letter, 4 digits, 2 letters (A1234BC)."""
    letters = string.ascii_uppercase
    numbers = []
    for n in rng.sample(range(26 * 10_000 * 26 * 26), count):
        n, last = divmod(n, 26)
        n, middle = divmod(n, 26)
        first, digits = divmod(n, 10_000)
        numbers.append(f"{letters[first]}{digits:04d}{letters[middle]}{letters[last]}")
    return numbers


@dataclass(frozen=True)
class Organisation:
    id: uuid.UUID
    code: str
    client_id: str
    role: str | None  # a recipient's kind; None for a prison or an auditor


def organisations(
    rng: random.Random,
) -> tuple[list[Organisation], list[Organisation], list[Organisation]]:
    """Prisons, recipients and auditors, with stable ids (seeded)."""

    def make(prefix: str, count: int, role: str | None = None) -> list[Organisation]:
        return [
            Organisation(
                uuid.UUID(int=rng.getrandbits(128), version=4),
                f"{prefix}{i:03d}",
                f"{prefix.lower()}{i:03d}-case-system",
                role,
            )
            for i in range(count)
        ]

    prisons = make("P", 120)
    recipients = make("PDU", 150, "probation_provider") + make(
        "SMS", 150, "substance_misuse_service"
    )
    return prisons, recipients, make("AUD", 5)


class Notices:
    """The entries of notices arriving at random times, yielded in time order."""

    def __init__(self, rng: random.Random, people: list[str], now: datetime) -> None:
        self.rng, self.people, self.now = rng, people, now
        self.prisons, self.recipients, self.auditors = organisations(rng)
        self.by_role = {role: [o for o in self.recipients if o.role == role] for role in ROLES}
        self.pending: list[tuple[datetime, int, tuple[Any, ...]]] = []
        self.serial = 0
        self.sequence: dict[uuid.UUID, int] = {}

    def _at(self, at: datetime, entry: tuple[Any, ...]) -> None:
        self.serial += 1
        heapq.heappush(self.pending, (min(at, self.now), self.serial, entry))

    def entries(self, count: int) -> Iterator[tuple[Any, ...]]:
        """count rows for COPY, in recorded_at order."""
        start = self.now - YEAR
        written = 0
        while written < count:
            # about 14 entries a notice: arrivals spread over the year, ending a few days early
            at = start + (YEAR - timedelta(days=3)) * (written / count)
            at += timedelta(seconds=self.rng.uniform(0, 600))
            self._notice(at)
            while self.pending and self.pending[0][0] <= at and written < count:
                when, _, row = heapq.heappop(self.pending)
                yield (when, *row)
                written += 1
        # the last arrivals' later events (acknowledgements) are cut off at count: as a log is

    def _notice(self, at: datetime) -> None:
        rng = self.rng
        person = rng.choice(self.people)
        prison = rng.choice(self.prisons)
        notice_id = uuid.uuid4()
        chosen = [rng.choice(self.by_role["probation_provider"])]
        if rng.random() < 0.8:
            chosen.append(rng.choice(self.by_role["substance_misuse_service"]))
        if rng.random() < 0.2:
            chosen.append(rng.choice(self.by_role["probation_provider"]))
        by_prison = (prison.id, prison.client_id, notice_id)
        self._at(
            at,
            (
                "notice.received",
                *by_prison,
                None,
                None,
                {
                    "body_sha256": _hex(rng),
                    "version": 1,
                    "supersedes": None,
                    "recipients": [o.code for o in chosen],
                },
                person,
            ),
        )
        if rng.random() < 0.4:
            self._at(
                at,
                (
                    "consent.recorded",
                    *by_prison,
                    None,
                    None,
                    {
                        "consent_id": str(uuid.uuid4()),
                        "person_ref": person,
                        "scope": "continuity_of_care",
                        "decision": rng.choice(["given", "given", "refused"]),
                        "expires_at": None,
                    },
                    person,
                ),
            )
        for organisation in chosen:
            self._recipient(at, notice_id, person, organisation)
        if rng.random() < 0.02:  # an auditor looks the person up
            auditor = rng.choice(self.auditors)
            self._at(
                at + timedelta(days=rng.uniform(0, 2)),
                (
                    "audit.consulted",
                    auditor.id,
                    auditor.client_id,
                    None,
                    None,
                    None,
                    {"query": "entries", "returned": rng.randint(1, 40)},
                    person,
                ),
            )

    def _recipient(
        self, at: datetime, notice_id: uuid.UUID, person: str, organisation: Organisation
    ) -> None:
        rng = self.rng
        sent, rule, withheld, reason = ROLES[organisation.role or ""]
        message_id = uuid.uuid4()
        about = (notice_id, message_id, organisation.id)
        self._at(
            at,
            (
                "disclosure.decided",
                None,
                None,
                notice_id,
                None,
                organisation.id,
                {
                    "disclosure_id": str(uuid.uuid4()),
                    "role": organisation.role,
                    "allowed": [{"path": p, "rule": rule} for p in sent],
                    "withheld": [{"path": p, "rule": r, "reason": reason} for p, r in withheld],
                    "consents_relied": [],
                    "policy_version": POLICY_VERSION,
                    "policy_hash": POLICY_HASH,
                },
                person,
            ),
        )
        sequence = self.sequence[organisation.id] = self.sequence.get(organisation.id, 0) + 1
        self._at(
            at,
            (
                "message.signed",
                None,
                None,
                *about,
                {
                    "kind": "disclosure",
                    "kid": "exchange-2026-11",
                    "jws_sha256": _hex(rng),
                    "sequence": sequence,
                    "supersedes": None,
                    **(
                        {"encrypted_to": f"{organisation.code}-enc-1", "jwe_sha256": _hex(rng)}
                        if rng.random() < 0.5
                        else {}
                    ),
                },
                person,
            ),
        )
        subscription = str(uuid.UUID(int=organisation.id.int ^ 1))
        self._at(
            at, ("delivery.queued", None, None, *about, {"subscription_id": subscription}, person)
        )
        delivery_id = str(uuid.uuid4())
        attempt, when = 1, at + timedelta(seconds=rng.uniform(0.05, 2))
        while rng.random() < 0.1 and attempt < 4:  # the receiver was down: retried later
            failed = {"delivery_id": delivery_id, "attempt": attempt, "status_code": 503}
            self._at(
                when,
                ("delivery.failed", None, None, *about, {**failed, "error": "http_503"}, person),
            )
            attempt, when = attempt + 1, when + timedelta(seconds=30 * 4**attempt)
        done = {"delivery_id": delivery_id, "attempt": attempt, "status_code": 200, "error": None}
        self._at(when, ("delivery.succeeded", None, None, *about, done, person))
        if rng.random() < 0.9:
            self._at(
                when + timedelta(hours=rng.uniform(0.1, 48)),
                (
                    "acknowledgement.recorded",
                    organisation.id,
                    organisation.client_id,
                    *about,
                    {
                        "acknowledgement_id": str(uuid.uuid4()),
                        "status": "received",
                        "message_kind": "disclosure",
                        "appointment_date": None,
                        "with_note": False,
                    },
                    person,
                ),
            )


def _hex(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def _row(entry: tuple[Any, ...]) -> tuple[Any, ...]:
    """A COPY row: details as the exchange stores them, their canonical text (CanonicalJSON),
    which append() also checks."""
    *head, details, person = entry
    return (*head, canonical_json(details).decode(), person)


async def fill(database_url: str, data_dir: Path, entries: int, persons: int) -> list[str]:
    """Append `entries` log entries about `persons` people; some NOMS numbers that have entries."""
    rng = random.Random(8_5)
    settings = Settings(database_url=database_url, data_dir=data_dir)
    keys = load_data_keys(settings.sealing_keys_dir)
    numbers = noms_numbers(rng, persons)
    people = [(noms, keys.person_ref(noms)) for noms in numbers]
    notices = Notices(rng, [person for _, person in people], datetime.now(UTC))
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = notices.entries(entries)

        def next_batch() -> list[tuple[Any, ...]]:
            return [_row(entry) for _, entry in zip(range(BATCH), rows, strict=False)]

        batch = next_batch()
        while batch:  # the next batch is made while PostgreSQL takes this one
            making = asyncio.create_task(asyncio.to_thread(next_batch))
            await connection.copy_records_to_table("audit_entry", records=batch, columns=COLUMNS)
            batch = await making
        await connection.execute("ANALYZE audit_entry")
        have = {
            r["person_ref"]
            for r in await connection.fetch(
                "SELECT DISTINCT person_ref FROM audit_entry WHERE person_ref IS NOT NULL"
            )
        }
    finally:
        await connection.close()
    return [noms for noms, person in people if person in have][:SAMPLE]


async def sequence_all(database_url: str, data_dir: Path) -> float:
    """Run the worker's sequencer and checkpointer until every entry is in a leaf and a
    checkpoint covers the whole tree; the seconds it took."""
    settings = Settings(database_url=database_url, data_dir=data_dir)
    signer = load_log_signer(settings)
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    started = time.perf_counter()
    try:
        while (await advance_log(sessions, settings, signer))[0]:
            pass
        await advance_log(sessions, settings, signer, sweep=True)  # as the worker's sweep
        # The last checkpoint is due checkpoint_every_seconds after the one before: stand in
        # for that wait with a checkpoint at any growth.
        final = settings.model_copy(update={"checkpoint_every_entries": 1})
        await advance_log(sessions, final, signer)
        async with sessions() as session:
            size = await log_tree.tree_size(session)
            last = await log_tree.latest_checkpoint(session)
        if last is None or last.tree_size != size:
            raise RuntimeError("no checkpoint covers the whole tree")
        seconds = time.perf_counter() - started
    finally:
        await engine.dispose()
    await _vacuum(database_url)
    return seconds


async def _vacuum(database_url: str) -> None:
    """What autovacuum would have done after such growth (it is off on the bench machine's
    PostgreSQL): planner statistics and visibility maps for the log's tables."""
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await connection.execute("VACUUM ANALYZE audit_entry, audit_leaf, audit_node")
    finally:
        await connection.close()
