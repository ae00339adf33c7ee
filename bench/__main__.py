"""`python -m bench [--quick] [--only PHASE ...]`: measure the exchange against its targets.

One run, on PostgreSQL (EXCHANGE_BENCH_POSTGRES_URL, default the local cluster's `test` database,
used only to create the run's own databases), in this order, each beside its baseline:

1. intake: notices a second under concurrent clients, and a bare FastAPI insert's; the
   statements a first-version notice sends;
2. scaleout: the same load on one API process and on two, in turns, on a database of its own;
3. delivery: one worker draining the backlog intake left, and a bare httpx loop;
4. end to end at a steady 50 notices a second, the API served as on this machine: a process
   per core (a second API instance, `exchange serve --workers 2`), with one worker;
5. growth: the small number of notices stored and the database copied (the API restarted, for
   that); after the memory phase, a bulk clone up to the large number, then intake p50 at the
   two sizes in turn, a fresh API process on each database;
6. memory: the resident size of the API process once it has answered the given number of
   notices (with growth, a process started just before; without, the one the phases before
   it used);
7. the log: a million entries, verified, proved and queried;
8. deadlines: the overdue scan at 10,000 and 1,000,000 stored messages, and the continuity-of-care
   report over a year of 70,000 releases, each on a database of its own.

`--quick` shrinks every size, for trying the harness; its results go to `<date>-quick.json` and
leave the README alone. The processes' logs are kept in bench/var/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from app.settings import Settings
from bench import phases, report, scaleout
from bench.phases import API_PORT, E2E_PORT, QUICK, RECEIVER_PORT, SMALL_PORT, Run, Scale
from bench.world import (
    ADMIN_URL,
    BIN,
    NAME,
    Api,
    Runner,
    asyncpg_dsn,
    exchange,
    exchange_env,
    fresh_database,
    register,
    until_listening,
    until_ready,
)

HERE = Path(__file__).resolve().parent
PHASES = ("intake", "scaleout", "delivery", "e2e", "growth", "memory", "log", "deadlines")


def serve(port: int) -> list[str]:
    return [str(BIN / "exchange"), "serve", "--port", str(port)]


def say(text: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {text}", flush=True)


async def main(scale: Scale, only: set[str], work_dir: Path) -> dict:
    results: dict[str, float] = {}
    runner = Runner(work_dir)
    try:
        url = await fresh_database(ADMIN_URL, NAME)
        data_dir = work_dir / "data"
        env = exchange_env(url, data_dir)
        exchange(env, "db", "upgrade")
        clients = register(env)
        receiver = runner.start(
            "receiver", [phases.PYTHON, "-m", "bench.receiver", str(RECEIVER_PORT)], env
        )
        api_process = runner.start("api", serve(API_PORT), env)
        await until_listening(receiver, RECEIVER_PORT)
        await until_listening(api_process, API_PORT)
        api = Api(API_PORT, clients)
        await api.subscribe(RECEIVER_PORT)
        run = Run(scale, runner, url, data_dir, api, api_process)
        if "intake" in only:
            say("intake, beside the bare FastAPI insert")
            results |= await phases.intake(run)
        if "scaleout" in only:
            say(f"scale-out: one API process and two, {scale.scaleout_rounds} rounds")
            results |= await scaleout.scaleout(run)
        if "delivery" in only:
            fields = Settings.model_fields  # the worker runs with the default pool
            per_subscription = fields["worker_subscription_concurrency"].default
            in_flight = min(fields["worker_concurrency"].default, per_subscription * 2)
            say(f"delivery: one worker, beside a bare httpx loop ({in_flight} in flight)")
            results |= await phases.delivery(run, in_flight)
        if "e2e" in only:
            say(f"end to end at {scale.e2e_rate:g} notices/s")
            if run.worker is None:
                run.start_worker()
            e2e_api = runner.start(
                "api-e2e", [*serve(E2E_PORT), "--workers", str(scale.e2e_api_processes)], env
            )
            await until_ready(e2e_api, E2E_PORT)
            results |= await phases.end_to_end(run)
            e2e_api.stop()
        run.stop_worker()

        async def fresh_api() -> None:
            """A new API process on API_PORT: the notices counted as answered are its own."""
            run.api_process = runner.start("api", serve(API_PORT), env)
            run.elsewhere, run.handled = run.elsewhere + run.handled, 0
            await until_listening(run.api_process, API_PORT)

        if "growth" in only:
            say(f"growth: {scale.small_notices:,} notices stored, and a copy of the database")
            await phases.fill(run, scale.small_notices, clients=scale.clients)
            small_stored = await run.sql("SELECT count(*) FROM release_notice")
            run.api_process.stop()  # a database is copied only with no one connected to it
            small_url = await fresh_database(ADMIN_URL, f"{NAME}_small", template=NAME)
            await fresh_api()  # the memory phase's process has answered nothing before it
        if "memory" in only:
            say(f"memory: posting until the API has answered {scale.memory_notices:,}")
            results |= await phases.memory(run)
        if "growth" in only:
            say(f"growth: cloning up to {scale.large_notices:,} notices")
            from bench import grow  # only this phase needs it

            run.api_process.stop()  # the clone has the database to itself
            stored = await grow.grow(url, scale.large_notices, data_keys_dir=data_dir / "data-keys")
            small_api = runner.start(
                "api-small", serve(SMALL_PORT), exchange_env(small_url, data_dir)
            )
            await fresh_api()  # each size timed by a process started at the same moment
            await until_listening(small_api, SMALL_PORT)
            say("growth: the two sizes in turn")
            figures, run.details["growth"] = await phases.growth(run)
            run.details["growth"] |= {"small_stored": small_stored, "stored": stored}
            results |= figures
            small_api.stop()
        run.api_process.stop()
        if "log" in only:
            say(f"the log: {scale.log_entries:,} entries")
            from bench import log_phase  # only this phase needs it

            figures, run.details["log"] = await log_phase.log(
                runner, ADMIN_URL, work_dir, scale.log_entries, scale.log_persons, scale.log_queries
            )
            results |= figures
        if "deadlines" in only:
            say("deadlines: the overdue scan at two sizes, and the continuity report over a year")
            from bench import deadlines_phase  # only this phase needs it

            sizes = deadlines_phase.QUICK_SIZES if scale is QUICK else deadlines_phase.Sizes()
            figures, run.details["deadlines"] = await deadlines_phase.deadlines(
                runner, ADMIN_URL, work_dir, sizes
            )
            results |= figures
        return {"results": results, "details": run.details}
    finally:
        runner.stop_all()


async def postgres_version() -> str:
    connection = await asyncpg.connect(asyncpg_dsn(ADMIN_URL))
    try:
        return " ".join((await connection.fetchval("SELECT version()")).split()[:2])
    finally:
        await connection.close()


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to try the harness")
    parser.add_argument("--only", nargs="+", choices=PHASES, default=list(PHASES))
    parser.add_argument(
        "--memory-notices", type=int, help="notices the API answers before its RSS is read"
    )
    arguments = parser.parse_args()
    scale = QUICK if arguments.quick else Scale()
    if arguments.memory_notices:
        scale = replace(scale, memory_notices=arguments.memory_notices)
    work_dir = HERE / "var"
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir()
    started = datetime.now(UTC)
    measured = asyncio.run(main(scale, set(arguments.only), work_dir))
    document = {
        "date": started.isoformat(timespec="seconds"),
        "machine": report.machine(asyncio.run(postgres_version())),
        "scale": asdict(scale),
        "phases": arguments.only,
        "results": measured["results"],
        "details": measured["details"],
        "minutes": round((datetime.now(UTC) - started).total_seconds() / 60, 1),
    }
    partial = arguments.quick or arguments.only != list(PHASES)
    path = report.write(document, f"{started:%Y-%m-%d}", partial)
    print(json.dumps(document["results"], indent=2))
    say(f"written to {path}")


if __name__ == "__main__":
    cli()
