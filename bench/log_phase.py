"""The log at size: append entries, sequence and checkpoint them, then time what an auditor does.

A database of its own, so that the size is exactly what was asked for: `exchange audit verify`
as the console script (wall time, start-up included), then inclusion proofs and person queries
over HTTP to an API process on that database.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from bench import log_fill
from bench.httpload import Connection, percentile, send
from bench.world import (
    BIN,
    HOST,
    NAME,
    PORT,
    Api,
    Runner,
    exchange,
    exchange_env,
    fresh_database,
    register,
    until_listening,
)

LOG_API_PORT = PORT + 3


async def timed_gets(api: Api, paths: list[str]) -> list[float]:
    """Each path once, in turn, on one keep-alive connection, as the auditor: latencies (ms)."""
    headers = {"authorization": f"Bearer {await api.token('AUDIT')}"}
    connection = Connection(HOST, api.port)
    samples = [await send(connection, ("GET", path, headers, b"")) for path in paths]
    connection.close()
    failed = [s for s in samples if s.status != 200]
    if failed:
        raise RuntimeError(f"{len(failed)} audit queries failed: {failed[0].body[:300]!r}")
    return [s.latency_ms for s in samples]


async def log(
    runner: Runner, admin_url: str, work_dir: Path, entries: int, persons: int, queries: int
) -> tuple[dict, dict]:
    url = await fresh_database(admin_url, f"{NAME}_log")
    data_dir = work_dir / "log-data"
    env = exchange_env(url, data_dir)
    exchange(env, "db", "upgrade")
    clients = register(env)
    started = time.monotonic()
    noms_numbers = await log_fill.fill(url, data_dir, entries, persons)
    filled = time.monotonic() - started
    sequenced = await log_fill.sequence_all(url, data_dir)
    started = time.monotonic()
    report = exchange(env, "audit", "verify")
    verified = time.monotonic() - started
    api = runner.start(
        "log-api", [str(BIN / "exchange"), "serve", "--port", str(LOG_API_PORT)], env
    )
    try:
        await until_listening(api, LOG_API_PORT)
        auditor = Api(LOG_API_PORT, clients)
        size = int(await _tree_size(auditor))
        picks = random.Random(8)
        await timed_gets(auditor, ["/v1/audit/checkpoint"] * 20)  # warm up the connection pool
        proofs = await timed_gets(
            auditor,
            [
                f"/v1/audit/proofs/inclusion?leaf_index={picks.randrange(size)}&tree_size={size}"
                for _ in range(queries)
            ],
        )
        people = await timed_gets(
            auditor,
            [f"/v1/audit/entries?noms_number={picks.choice(noms_numbers)}" for _ in range(queries)],
        )
    finally:
        api.stop()
    details = {
        "entries": entries,
        "tree_size": size,
        "fill_s": round(filled, 1),
        "sequence_s": round(sequenced, 1),
        "verify_report_tail": report.strip().splitlines()[-1:] if report else [],
        "inclusion_proof_p50_ms": round(percentile(proofs, 50), 2),
        "person_query_p50_ms": round(percentile(people, 50), 2),
    }
    return {
        "audit_verify_1m_s": round(verified, 2),
        "inclusion_proof_ms": round(percentile(proofs, 95), 2),
        "person_query_p95_ms": round(percentile(people, 95), 2),
    }, details


async def _tree_size(api: Api) -> int:
    checkpoint = await api.call("GET", "/v1/audit/checkpoint", as_="AUDIT")
    return checkpoint["tree_size"]
