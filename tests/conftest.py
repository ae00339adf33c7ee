"""Fixtures: every database test runs on SQLite and on PostgreSQL, schema built by migrations.

PostgreSQL is taken from EXCHANGE_TEST_POSTGRES_URL (default: the local cluster, database
`test`); a fresh database is created for the run and dropped after it. Where PostgreSQL cannot be
reached its half skips with the reason, except under CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from app.access import organisations as admin
from app.audit.signer import load_log_signer
from app.cli.main import cli
from app.keys.sealing import DataKeys
from app.main import create_app
from app.messages.signed import Signing
from app.notices import examples
from app.settings import Settings
from app.storage import migrate
from app.storage.models import Base
from app.worker.loop import advance_log
from app.worker.transactions import number
from tests.helpers import clock as suite_clock

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "schemas" / "examples" / "release-notice.json"
POSTGRES_URL = os.environ.get(
    "EXCHANGE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
ISSUER = "http://exchange.test"
TABLES = [t.name for t in reversed(Base.metadata.sorted_tables)]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--today",
        metavar="YYYY-MM-DD",
        default=os.environ.get(suite_clock.TODAY),
        help="run the whole suite as if today were this day (tests/helpers/clock.py)",
    )


def pytest_configure(config: pytest.Config) -> None:
    suite_clock.start(config.getoption("--today"))


def pytest_report_header(config: pytest.Config) -> str:
    return f"today: {datetime.now(UTC).date()} (--today moves it)"


@pytest.fixture(scope="session")
def clock() -> suite_clock.Clock:
    """The suite's one clock: every date a test uses comes from it (tests/helpers/clock.py)."""
    return suite_clock.Clock(datetime.now(UTC).date())


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "exchange.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    yield from migrated_postgres_database("exchange_test")


def migrated_postgres_database(prefix: str) -> Iterator[str]:
    """A PostgreSQL database of its own, migrated, then dropped: a fixture yields from it."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"

    async def admin_sql(sql: str) -> None:
        connection = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL), timeout=5)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    try:
        asyncio.run(admin_sql(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        reason = f"PostgreSQL unreachable at {make_url(POSTGRES_URL).host}: {exc!r}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{reason} (under CI the PostgreSQL half must run)")
        pytest.skip(reason)
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    yield url
    asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: a copy of the SQLite template, or PostgreSQL truncated."""
    if request.param == "sqlite":
        path = tmp_path / "exchange.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    url = request.getfixturevalue("postgres_database")

    async def truncate() -> None:
        connection = await asyncpg.connect(_asyncpg_dsn(url))
        try:
            # The exchange log's triggers refuse TRUNCATE; between tests (only) they are
            # bypassed, as a replica applying changes would bypass them.
            async with connection.transaction():
                await connection.execute("SET LOCAL session_replication_role = replica")
                await connection.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
        finally:
            await connection.close()

    asyncio.run(truncate())
    yield url


@pytest.fixture
def run(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The `exchange` command, in process, on the test's database: run("org", "add", ...)."""
    monkeypatch.setenv("EXCHANGE_DATABASE_URL", database_url)
    monkeypatch.setenv("EXCHANGE_DATA_DIR", str(tmp_path / "var"))
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, list(args))


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        issuer=ISSUER,
        webhook_allowed_cidrs=(ipaddress.ip_network("127.0.0.0/8"),),
        embedded_worker=False,
        worker_poll_seconds=0.05,
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


async def number_messages(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Number every committed message still unnumbered, as a worker does moments after the
    commit that stored it (app/messages/sequencer.py): how many. The suite's one way to let the
    inbox and deliveries catch up, instead of running a worker or sleeping."""
    return await number(sessions)


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The API in process. After each request but a GET (which stores no message), what it
    stored is numbered at once (number_messages), as a worker would do after its commit: a
    test reads the inbox as a recipient would a moment later. Tests of the unnumbered state
    make their own client (unnumbered_api) or call the use cases directly."""
    sessions = app.state.sessions

    async def numbered(response: httpx.Response) -> None:
        if response.request.method != "GET":
            await number_messages(sessions)

    transport = httpx.ASGITransport(app=app)
    hooks = {"response": [numbered]}
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER, event_hooks=hooks) as client:
        yield client


@pytest.fixture
async def unnumbered_api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The API in process, with no sequencer behind it: what a request stores stays unnumbered
    until the test calls number_messages."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
        yield client


@pytest.fixture
def sessions(app: FastAPI) -> async_sessionmaker[AsyncSession]:
    return app.state.sessions


@pytest.fixture
def example(clock: suite_clock.Clock) -> dict[str, Any]:
    """The canonical example, its dates moved to today so that intake's date checks hold."""
    return examples.release_notice(clock.today)


# Organisations every API test can use: (kind, code). The example notice names MDI, N07, SMS-LEEDS.
ORGANISATIONS = [
    ("prison", "MDI"),
    ("prison", "LPI"),
    ("probation_provider", "N07"),
    ("probation_provider", "N99"),
    ("substance_misuse_service", "SMS-LEEDS"),
    ("auditor", "AUDIT"),
    ("operator", "OPS"),
]


@dataclass
class World:
    """Registered organisations, with a client and an access token for each on demand."""

    api: httpx.AsyncClient
    sessions: async_sessionmaker[AsyncSession]
    data_keys: DataKeys
    signing: Signing
    ids: dict[str, uuid.UUID] = field(default_factory=dict)
    _tokens: dict[str, str] = field(default_factory=dict)

    async def credentials(self, code: str, scopes: str | None = None) -> tuple[str, str]:
        async with self.sessions() as session, session.begin():
            client, secret = await admin.add_client(
                session, organisation_code=code, scopes=scopes, now=datetime.now(UTC)
            )
        return client.client_id, secret

    async def token(self, code: str) -> str:
        if code not in self._tokens:
            client_id, secret = await self.credentials(code)
            response = await self.api.post(
                "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
            )
            assert response.status_code == 200, response.text
            self._tokens[code] = response.json()["access_token"]
        return self._tokens[code]

    async def headers(self, code: str) -> dict[str, str]:
        return {"authorization": f"Bearer {await self.token(code)}"}

    async def post_notice(self, body: Any, code: str = "MDI") -> httpx.Response:
        return await self.api.post(
            "/v1/release-notices", json=body, headers=await self.headers(code)
        )

    async def counts(self) -> dict[str, int]:
        async with self.sessions() as session:
            return {
                t.name: (await session.scalar(select(func.count()).select_from(t))) or 0
                for t in Base.metadata.sorted_tables
            }

    async def execute(self, statement: str, **params: Any) -> None:
        """Change rows directly, in a transaction of its own: to set up what the API cannot."""
        async with self.sessions() as session, session.begin():
            await session.execute(text(statement), params)

    async def sql(self, statement: str, **params: Any) -> list[Any]:
        async with self.sessions() as session:
            return list((await session.execute(text(statement), params)).all())


@pytest.fixture
async def world(
    app: FastAPI, api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> World:
    result = World(api, sessions, app.state.data_keys, app.state.signing)
    async with sessions() as session, session.begin():
        for kind, code in ORGANISATIONS:
            organisation = await admin.add_organisation(
                session, kind=kind, code=code, name=f"{code} test", now=datetime.now(UTC)
            )
            result.ids[code] = organisation.id
    return result


@pytest.fixture
async def log(world, example, settings):
    """Three notices' worth of entries, sequenced, with a checkpoint after each notice."""
    settings = settings.model_copy(update={"checkpoint_every_entries": 1})
    signer = load_log_signer(settings)
    for _ in range(3):
        assert (await world.post_notice(example)).status_code == 202
        await advance_log(world.sessions, settings, signer, now=datetime.now(UTC))
    return signer
