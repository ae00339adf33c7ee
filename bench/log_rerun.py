"""Measure the log phase again on the log database a run left (`<name>_log`, bench/var/log-data):
`exchange audit verify` timed as a command, then inclusion proofs and person queries over HTTP,
as bench.log_phase measures them, without filling and sequencing a million entries again (only
what the queries logged since is sequenced first).

    python -m bench.log_rerun [--verify 3] [--queries 200] [--code DIR]

--code runs the `exchange` processes on another checkout's app (PYTHONPATH first), so two versions
compare on the same database. Each verify is reported with its wall time and the CPU time of its
process (user + system: what the machine's other load changes least). The database's own work
runs in its server process and is not in that CPU time. Nothing personal is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import statistics
import time
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from app.keys.sealing import load_data_keys
from app.settings import Settings
from bench import log_fill
from bench.httpload import percentile
from bench.log_phase import LOG_API_PORT, _tree_size, timed_gets
from bench.phases import Scale
from bench.world import (
    ADMIN_URL,
    BIN,
    NAME,
    Api,
    Runner,
    asyncpg_dsn,
    cpu_seconds,
    exchange,
    exchange_env,
    until_listening,
)

HERE = Path(__file__).resolve().parent


def timed_verify(env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds of the process, and its verdict line."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    report = exchange(env, "audit", "verify")
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, report.strip().splitlines()[-1]


async def sample(url: str, data_dir: Path, persons: int) -> list[str]:
    """The NOMS numbers log_fill.fill returned for this log (the same seed)."""
    keys = load_data_keys(Settings(database_url=url, data_dir=data_dir).sealing_keys_dir)
    numbers = log_fill.noms_numbers(random.Random(8_5), persons)
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await connection.fetch(
            "SELECT DISTINCT person_ref FROM audit_entry WHERE person_ref IS NOT NULL"
        )
    finally:
        await connection.close()
    have = {row[0] for row in rows}
    return [noms for noms in numbers if keys.person_ref(noms) in have][: log_fill.SAMPLE]


async def main(arguments: argparse.Namespace) -> dict:
    database = arguments.database or f"{NAME}_log"
    url = make_url(ADMIN_URL).set(database=database).render_as_string(hide_password=False)
    data_dir = arguments.data_dir
    env = exchange_env(url, data_dir)
    if arguments.code:
        env["PYTHONPATH"] = os.pathsep.join([str(arguments.code), env["PYTHONPATH"]])
    # what a run's queries logged since, sequenced and checkpointed as the worker would have
    await log_fill.sequence_all(url, data_dir)
    verifies = [timed_verify(env) for _ in range(arguments.verify)]
    for wall, cpu, verdict in verifies:
        print(f"verify: {wall:.2f} s wall, {cpu:.2f} s CPU: {verdict}", flush=True)
    result: dict = {
        "verify_wall_s": [round(v[0], 2) for v in verifies],
        "verify_cpu_s": [round(v[1], 2) for v in verifies],
    }
    if verifies:
        result["verify_wall_median_s"] = round(statistics.median(v[0] for v in verifies), 2)
        result["verify_cpu_median_s"] = round(statistics.median(v[1] for v in verifies), 2)
    if not arguments.queries:
        return result
    auditor = json.loads(exchange(env, "client", "add", "--org", "AUDIT"))
    noms_numbers = await sample(url, data_dir, Scale().log_persons)
    runner = Runner(HERE / "var")
    api_process = runner.start(
        "log-rerun-api", [str(BIN / "exchange"), "serve", "--port", str(LOG_API_PORT)], env
    )
    try:
        await until_listening(api_process, LOG_API_PORT)
        api = Api(LOG_API_PORT, {"AUDIT": auditor})
        size = int(await _tree_size(api))
        picks = random.Random(8)
        await timed_gets(api, ["/v1/audit/checkpoint"] * 20)
        queries = arguments.queries
        cpu = cpu_seconds(api_process.popen.pid)
        proofs = await timed_gets(
            api,
            [
                f"/v1/audit/proofs/inclusion?leaf_index={picks.randrange(size)}&tree_size={size}"
                for _ in range(queries)
            ],
        )
        cpu, proof_cpu = (
            cpu_seconds(api_process.popen.pid),
            cpu_seconds(api_process.popen.pid) - cpu,
        )
        people = await timed_gets(
            api,
            [f"/v1/audit/entries?noms_number={picks.choice(noms_numbers)}" for _ in range(queries)],
        )
        people_cpu = cpu_seconds(api_process.popen.pid) - cpu
    finally:
        runner.stop_all()
    result["inclusion_proof_api_cpu_ms"] = round(proof_cpu / queries * 1000, 2)
    result["person_query_api_cpu_ms"] = round(people_cpu / queries * 1000, 2)
    for name, samples in (("inclusion_proof", proofs), ("person_query", people)):
        result[f"{name}_p50_ms"] = round(percentile(samples, 50), 2)
        result[f"{name}_p95_ms"] = round(percentile(samples, 95), 2)
    return result


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--verify", type=int, default=3, help="how many verify runs")
    parser.add_argument("--queries", type=int, default=200, help="proofs and person queries")
    parser.add_argument("--code", type=Path, help="another checkout whose app to run")
    parser.add_argument("--data-dir", type=Path, default=HERE / "var" / "log-data")
    parser.add_argument("--database", help="default: the log phase's, <EXCHANGE_BENCH_NAME>_log")
    arguments = parser.parse_args()
    print(json.dumps(asyncio.run(main(arguments)), indent=1))


if __name__ == "__main__":
    cli()
