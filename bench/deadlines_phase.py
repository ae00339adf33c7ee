"""The overdue scan and the continuity report at size (issue 24 item 6), on databases of their own.

Built first (bench/deadlines_fill.py, set-based SQL, then VACUUM ANALYZE), measured after:

- the overdue scan, in process, at two sizes: `scan_small` (10,000 messages, 1,000 open
  deadlines) and `scan_large` (1,000,000 messages, 100,000 open). An idle pass (nothing due):
  the worker's own transaction (app.worker.transactions.alert_overdue), 50 times, median and
  p95. A busy pass: 100 open deadlines made due (their due_at set a minute back, untimed), then
  one batch of app.alerts.scan.scan_due in a transaction of its own, committed: it signs and
  stores the alerts. Several fresh batches, the median. At the large size, EXPLAIN (ANALYZE,
  BUFFERS) of the scan's SELECT, as it sent it, idle and with 100 due (rolled back).
- the continuity-of-care report over a year of 70,000 releases (`reports`): the use case the API
  calls (app.reports.reporting.continuity_of_care), by month, prison and service over the year,
  5 times each (median); then over HTTP, `GET /v1/reports/continuity-of-care` as the auditor
  with a token, to an API process on that database.

On a shared machine, EXCHANGE_BENCH_QUIET names a file created while measuring (after
EXCHANGE_BENCH_QUIET_SECONDS, default 60, for the neighbours to notice it) and removed after.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
from sqlalchemy import event, text

from bench import deadlines_fill
from bench.deadlines_fill import Shape
from bench.httpload import percentile
from bench.log_phase import timed_gets
from bench.world import (
    BIN,
    NAME,
    PORT,
    Api,
    Runner,
    asyncpg_dsn,
    exchange,
    exchange_env,
    fresh_database,
    register,
    until_listening,
)

REPORTS_API_PORT = PORT + 3
BY = ("month", "prison", "service")
# `:count` open deadlines, drawn at random, made due at `:due` (a minute before now).
MAKE_DUE = text(
    "UPDATE deadline SET due_at = :due, due_on = :day WHERE id IN (SELECT id FROM deadline"
    " WHERE met_at IS NULL AND stopped_at IS NULL AND alerted_at IS NULL"
    " ORDER BY random() LIMIT :count)"
)


@dataclass(frozen=True)
class Sizes:
    small_messages: int = 10_000
    small_open: int = 1_000
    large_messages: int = 1_000_000
    large_open: int = 100_000
    idle_passes: int = 50
    busy_batches: int = 9  # of 100: the small size has 1,000 open
    batch: int = 100
    releases: int = 70_000
    report_runs: int = 5


QUICK_SIZES = Sizes(
    large_messages=100_000, large_open=10_000, idle_passes=20, busy_batches=3, releases=7_000
)


@dataclass
class World:
    url: str
    env: dict[str, str]
    clients: dict[str, dict]
    written: dict[str, int]
    fill_s: float


async def build(admin_url: str, name: str, data_dir: Path, fill: Callable) -> World:
    """A fresh, migrated database with the bench's organisations and clients, filled."""
    url = await fresh_database(admin_url, name)
    env = exchange_env(url, data_dir)
    exchange(env, "db", "upgrade")
    clients = register(env)
    started = time.monotonic()
    written = await fill(asyncpg_dsn(url))
    return World(url, env, clients, written, round(time.monotonic() - started, 1))


async def scan_world(admin_url: str, name: str, data_dir: Path, messages: int, opened: int):
    now = datetime.now(UTC)

    async def fill(dsn: str) -> dict[str, int]:
        connection = await asyncpg.connect(dsn)
        try:
            prison = await deadlines_fill.by_code(connection, "MDI")
            probation = await deadlines_fill.by_code(connection, "N07")
            service = await deadlines_fill.by_code(connection, "SMS-LEEDS")
        finally:
            await connection.close()
        shape = Shape.scan(messages, opened, now.date())
        return await deadlines_fill.fill(
            dsn, shape, prisons=prison, probation=probation, services=service, now=now
        )

    return await build(admin_url, name, data_dir, fill)


async def reports_world(admin_url: str, name: str, data_dir: Path, releases: int) -> World:
    """A year of releases from 12 prisons to 5 probation providers and 8 services."""
    now = datetime.now(UTC)

    async def fill(dsn: str) -> dict[str, int]:
        connection = await asyncpg.connect(dsn)
        try:
            kinds = {}
            for prefix, kind, count in (
                ("HMP", "prison", 12),
                ("PDU", "probation_provider", 5),
                ("SMS", "substance_misuse_service", 8),
            ):
                kinds[kind] = await deadlines_fill.organisations(
                    connection, prefix=prefix, kind=kind, count=count, now=now
                )
        finally:
            await connection.close()
        first = date.fromordinal(now.date().toordinal() - 364)
        shape = Shape(releases, fresh=0, probation_received=0, first_day=first, span_days=365)
        return await deadlines_fill.fill(
            dsn,
            shape,
            prisons=kinds["prison"],
            probation=kinds["probation_provider"],
            services=kinds["substance_misuse_service"],
            now=now,
        )

    return await build(admin_url, name, data_dir, fill)


def _due(now: datetime, count: int) -> dict:
    return {"due": now - timedelta(minutes=1), "day": now.date(), "count": count}


def _tell(path: str, *, quiet: bool) -> None:
    if quiet:
        Path(path).touch()
    else:
        Path(path).unlink(missing_ok=True)


@asynccontextmanager
async def quiet() -> AsyncIterator[None]:
    """The neighbours told to pause (EXCHANGE_BENCH_QUIET), for as long as the block runs."""
    path = os.environ.get("EXCHANGE_BENCH_QUIET")
    if not path:
        yield
        return
    _tell(path, quiet=True)
    try:
        await asyncio.sleep(float(os.environ.get("EXCHANGE_BENCH_QUIET_SECONDS", "60")))
        yield
    finally:
        _tell(path, quiet=False)


def ms(seconds: float) -> float:
    return round(1000 * seconds, 2)


async def timed(call: Callable[[], Awaitable[object]]) -> tuple[float, object]:
    started = time.perf_counter()
    got = await call()
    return time.perf_counter() - started, got


class Scan:
    """The scan, in process, on one database: the exchange's engine, sessions and signing."""

    def __init__(self, world: World, data_dir: Path) -> None:
        from app.main import create_app  # the Signing as the app builds it
        from app.settings import Settings
        from app.storage.db import make_engine, make_sessionmaker

        settings = Settings(database_url=world.url, data_dir=data_dir)
        self.signing = create_app(settings).state.signing
        self.engine = make_engine(world.url)
        self.sessions = make_sessionmaker(self.engine)
        self.sent: list[tuple[str, object]] = []  # the scan's SELECTs on deadline, as sent
        event.listen(self.engine.sync_engine, "before_cursor_execute", self._note)

    def _note(self, _conn, _cursor, statement, parameters, *_args) -> None:
        words = statement.lstrip().upper()
        if words.startswith("SELECT") and "FROM DEADLINE" in words:
            self.sent.append((statement, parameters))

    async def idle(self, passes: int) -> dict:
        from app.worker.transactions import alert_overdue

        samples, handled = [], 0
        for _ in range(passes):
            took, got = await timed(
                lambda: alert_overdue(self.sessions, self.signing, now=datetime.now(UTC))
            )
            samples.append(took)
            handled += got
        if handled:
            raise RuntimeError(f"an idle pass handled {handled} deadlines")
        return {
            "passes": passes,
            "p50_ms": ms(statistics.median(samples)),
            "p95_ms": ms(percentile(samples, 95)),
            "max_ms": ms(max(samples)),
        }

    async def make_due(self, count: int) -> datetime:
        """`count` open deadlines, drawn at random, made due a minute ago: now."""
        now = datetime.now(UTC)
        async with self.sessions() as session, session.begin():
            await session.execute(MAKE_DUE, _due(now, count))
        return now

    async def batch(self, count: int) -> tuple[float, int]:
        """One batch of the scan in a transaction of its own, committed: seconds, handled."""
        from app.alerts.scan import scan_due

        await self.make_due(count)

        async def one() -> int:
            async with self.sessions() as session, session.begin():
                return await scan_due(session, self.signing, now=datetime.now(UTC), limit=count)

        return await timed(one)

    async def explain(self, count: int) -> dict[str, list[str]]:
        """EXPLAIN (ANALYZE, BUFFERS) of the scan's first SELECT on deadline, as it sent it:
        with nothing due, and with `count` due (in a transaction rolled back)."""
        from app.alerts.scan import scan_due

        plans: dict[str, list[str]] = {}
        for label, due in (("idle", 0), ("busy", count)):
            async with self.sessions() as session:
                transaction = await session.begin()
                now = datetime.now(UTC)
                if due:
                    await session.execute(MAKE_DUE, _due(now, due))
                self.sent.clear()
                nested = await session.begin_nested()
                await scan_due(session, self.signing, now=now, limit=count)
                await nested.rollback()
                statement, parameters = self.sent[0]
                connection = await session.connection()
                result = await connection.exec_driver_sql(
                    "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters
                )
                plans[label] = [row[0] for row in result]
                plans[f"{label}_statement"] = [" ".join(statement.split())]
                await transaction.rollback()
        return plans

    async def close(self) -> None:
        await self.engine.dispose()


async def scans_in_turns(worlds: dict[str, World], data_dir: Path, sizes: Sizes) -> dict:
    """Idle passes and busy batches at each size, the sizes taken in turns (a pass or batch at
    one, then at the other), so that a neighbour's load or the machine's drift falls on both
    alike and their ratio means the sizes, not the minutes they were timed in."""
    scans = {name: Scan(world, data_dir) for name, world in worlds.items()}
    idle: dict[str, list[dict]] = {name: [] for name in scans}
    rounds: dict[str, list[tuple[float, int]]] = {name: [] for name in scans}
    try:
        for scan in scans.values():
            await scan.idle(5)  # warm: pool, prepared statements
        for _ in range(sizes.idle_passes):
            for name, scan in scans.items():
                idle[name].append(await scan.idle(1))
        for _ in range(sizes.busy_batches):
            for name, scan in scans.items():
                rounds[name].append(await scan.batch(sizes.batch))
        details: dict = {}
        for name in scans:
            samples = [one["p50_ms"] for one in idle[name]]
            details[name] = {
                "idle": {
                    "passes": len(samples),
                    "p50_ms": round(statistics.median(samples), 2),
                    "p95_ms": round(percentile(samples, 95), 2),
                    "max_ms": max(samples),
                },
                "busy": busy_of(rounds[name], sizes.batch),
            }
        details["explain"] = await scans["scan_large"].explain(sizes.batch)
        return details
    finally:
        for scan in scans.values():
            await scan.close()


def busy_of(rounds: list[tuple[float, int]], count: int) -> dict:
    return {
        "batches": len(rounds),
        "due": count,
        "handled": [got for _, got in rounds],
        "rounds_ms": [ms(took) for took, _ in rounds],
        "p50_ms": ms(statistics.median(took for took, _ in rounds)),
    }


async def report_times(world: World, sizes: Sizes, start: date, end: date) -> dict:
    """The report's use case, as the API calls it, `report_runs` times by each grouping."""
    from app.deadlines.rules import Windows
    from app.reports import reporting
    from app.reports.grouping import Asked
    from app.storage.db import make_engine, make_sessionmaker

    engine = make_engine(world.url)
    sessions = make_sessionmaker(engine)
    figures: dict[str, dict] = {}
    try:
        for by in BY:
            samples, groups = [], 0
            for _ in range(sizes.report_runs):

                async def one(by=by) -> object:
                    async with sessions() as session, session.begin():
                        return await reporting.continuity_of_care(
                            session, Asked(start, end, by), windows=Windows(), now=datetime.now(UTC)
                        )

                took, report = await timed(one)
                samples.append(took)
                groups = len(report.groups)
            figures[by] = {
                "groups": groups,
                "runs_ms": [ms(s) for s in samples],
                "p50_ms": ms(statistics.median(samples)),
            }
        figures["rows_only"] = await _rows_only(sessions, sizes, Asked(start, end, "month"))
    finally:
        await engine.dispose()
    return figures


async def _rows_only(sessions, sizes: Sizes, asked) -> dict:
    """The report's one SELECT alone (its rows fetched, nothing decided), and its EXPLAIN
    (ANALYZE, BUFFERS): how much of the use case is the database's."""
    from sqlalchemy.dialects import postgresql

    from app.reports.reading import continuity_statement

    statement = continuity_statement(asked)
    samples = []
    async with sessions() as session, session.begin():
        for _ in range(sizes.report_runs):
            took, rows = await timed(lambda: _all(session, statement))
            samples.append(took)
        literal = statement.compile(
            dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
        )
        plan = await session.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {literal}"))
    return {
        "rows": len(rows),
        "runs_ms": [ms(s) for s in samples],
        "p50_ms": ms(statistics.median(samples)),
        "explain": [row[0] for row in plan],
    }


async def _all(session, statement) -> list:
    return (await session.execute(statement)).all()


async def report_over_http(runner: Runner, world: World, sizes: Sizes, start: date, end: date):
    api = runner.start(
        "reports-api",
        [str(BIN / "exchange"), "serve", "--port", str(REPORTS_API_PORT)],
        world.env,
    )
    try:
        await until_listening(api, REPORTS_API_PORT)
        auditor = Api(REPORTS_API_PORT, world.clients)
        path = f"/v1/reports/continuity-of-care?from={start}&to={end}&by=month"
        first = await timed_gets(auditor, [path])  # the process's first: warms its pool
        runs = await timed_gets(auditor, [path] * sizes.report_runs)
    finally:
        api.stop()
    return {"first_ms": round(first[0], 2), "runs_ms": [round(r, 2) for r in runs]}


async def deadlines(
    runner: Runner, admin_url: str, work_dir: Path, sizes: Sizes
) -> tuple[dict, dict]:
    data_dir = work_dir / "deadlines-data"
    small = await scan_world(
        admin_url, f"{NAME}_scan_small", data_dir, sizes.small_messages, sizes.small_open
    )
    large = await scan_world(
        admin_url, f"{NAME}_scan_large", data_dir, sizes.large_messages, sizes.large_open
    )
    year = await reports_world(admin_url, f"{NAME}_reports", data_dir, sizes.releases)
    today = datetime.now(UTC).date()
    start, end = date.fromordinal(today.toordinal() - 364), today
    details: dict = {
        "built": {
            name: {"rows": w.written, "fill_s": w.fill_s}
            for name, w in (("scan_small", small), ("scan_large", large), ("reports", year))
        }
    }
    async with quiet():
        details |= await scans_in_turns({"scan_small": small, "scan_large": large}, data_dir, sizes)
        details["report"] = await report_times(year, sizes, start, end)
        details["report_http"] = await report_over_http(runner, year, sizes, start, end)
    details["report"]["range"] = [start.isoformat(), end.isoformat()]
    idle_small, idle_large = details["scan_small"]["idle"], details["scan_large"]["idle"]
    busy_small, busy_large = details["scan_small"]["busy"], details["scan_large"]["busy"]
    return {
        "overdue_idle_ms": idle_large["p50_ms"],
        "overdue_idle_p95_ms": idle_large["p95_ms"],
        "overdue_idle_ratio": round(idle_large["p50_ms"] / idle_small["p50_ms"], 3),
        "overdue_busy_ms": busy_large["p50_ms"],
        "overdue_busy_ratio": round(busy_large["p50_ms"] / busy_small["p50_ms"], 3),
        "continuity_report_ms": max(details["report"][by]["p50_ms"] for by in BY),
        "continuity_report_http_ms": statistics.median(details["report_http"]["runs_ms"]),
    }, details
