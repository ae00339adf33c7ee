"""Measure the reports again on the reports database a deadlines run left (`<name>_reports`), or
fill one first (`--fill`): the continuity-of-care and timeliness use cases as the API calls them,
by month, prison and service, without filling the scan databases.

    python -m bench.report_rerun [--fill] [--runs 5] [--figures PATH]

Before measuring it upgrades the database (`exchange db upgrade`: a new migration applies). With
--figures it writes every report's figures (one `now` for all) to PATH as JSON, so that two
versions of the code can be compared on the same data. Nothing personal is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
from datetime import UTC, date, datetime
from pathlib import Path

import asyncpg

from bench.deadlines_phase import ms, reports_world, timed
from bench.world import ADMIN_URL, NAME, asyncpg_dsn, exchange, exchange_env

HERE = Path(__file__).resolve().parent
BY = ("month", "prison", "service")


async def _exists(name: str) -> bool:
    connection = await asyncpg.connect(asyncpg_dsn(ADMIN_URL), timeout=5)
    try:
        return bool(await connection.fetchval("SELECT 1 FROM pg_database WHERE datname=$1", name))
    finally:
        await connection.close()


async def _database(fill: bool, releases: int) -> str:
    from sqlalchemy.engine import make_url

    name, data_dir = f"{NAME}_reports", HERE / "var" / "deadlines-data"
    if fill or not await _exists(name):
        world = await reports_world(ADMIN_URL, name, data_dir, releases)
        print(json.dumps({"filled": world.written, "fill_s": world.fill_s}))
        return world.url
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    exchange(exchange_env(url, data_dir), "db", "upgrade")
    return url


async def measure(url: str, runs: int) -> tuple[dict, dict]:
    from app.deadlines.rules import Windows
    from app.reports import reporting
    from app.reports.grouping import Asked
    from app.storage.db import make_engine, make_sessionmaker

    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    now = datetime.now(UTC)
    start, end = date.fromordinal(now.date().toordinal() - 364), now.date()
    found: dict[str, dict] = {}
    kept: dict[str, object] = {}
    try:
        for name, use in (
            ("continuity", reporting.continuity_of_care),
            ("timeliness", reporting.timeliness_of),
        ):
            for by in BY:

                async def one(by=by, use=use) -> object:
                    async with sessions() as session, session.begin():
                        return await use(session, Asked(start, end, by), windows=Windows(), now=now)

                samples = []
                for _ in range(runs):
                    took, report = await timed(one)
                    samples.append(took)
                found[f"{name}_{by}"] = {
                    "runs_ms": [ms(s) for s in samples],
                    "p50_ms": ms(statistics.median(samples)),
                }
                kept[f"{name}_{by}"] = report.model_dump(mode="json", exclude={"generated_at"})
    finally:
        await engine.dispose()
    return found, kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fill", action="store_true")
    parser.add_argument("--releases", type=int, default=70_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--figures", type=Path)
    args = parser.parse_args()

    async def run() -> tuple[dict, dict]:
        url = await _database(args.fill, args.releases)
        return await measure(url, args.runs)

    found, kept = asyncio.run(run())
    if args.figures is not None:
        args.figures.write_text(json.dumps(kept, indent=1, sort_keys=True))
    for name, figures in found.items():
        print(f"{name:22} p50 {figures['p50_ms']:9.1f} ms  runs {figures['runs_ms']}")


if __name__ == "__main__":
    main()
