"""The scale-out phase: notices a second accepted by one API process, and by two.

With nothing serialising intake any more (messages are numbered after commit, by the worker),
two API processes should accept nearly twice what one does (issue 23: at least 1.7 times).
Both instances run side by side on one database of the phase's own (`<NAME>_scaleout`, set up
as the run's: the same organisations, clients and subscriptions, no worker), so the phases after
it find the database intake left: `exchange serve --workers 1` and `exchange serve --workers 2`,
one idle while the other is measured. The same closed-loop clients and bodies as intake (each
notice a new person; each client connecting again every RECONNECT_EVERY notices), each
measurement after a VACUUM ANALYZE (the cluster runs no autovacuum) and a warm-up of its own.
The two are measured back to back in rounds, taking turns to go first, because this shared
machine's speed drifts within minutes; `scaleout_ratio` is the median of the rounds' ratios.

The load generator (this process) and PostgreSQL share the machine's two cores with the API
processes, so each measurement also records the API processes' CPU per notice (/proc, each
process's share), the load generator's, and how many cores the whole machine kept busy.
"""

from __future__ import annotations

import statistics
import time

import asyncpg

from bench.httpload import closed_loop
from bench.phases import E2E_PORT, RECEIVER_PORT, SMALL_PORT, Run, summary
from bench.world import (
    ADMIN_URL,
    BIN,
    HOST,
    NAME,
    Api,
    Notices,
    Process,
    asyncpg_dsn,
    exchange,
    exchange_env,
    fresh_database,
    machine_cpu_seconds,
    register,
    until_ready,
)

PORTS = {1: E2E_PORT, 2: SMALL_PORT}  # API processes -> port; both free while this phase runs
# Each client connects again after this many notices, so that connections spread over the
# processes behind a port (httpload.closed_loop): with the 16 connections kept open all along,
# one measurement left one of the two processes all but idle (0.03 s of CPU against 5.97 s).
RECONNECT_EVERY = 10


async def scaleout(run: Run) -> dict:
    """Notices a second through one API process and through two, in rounds, one after the
    other; the rates' medians and the median of the rounds' ratios (two over one)."""
    scale = run.scale
    url = await fresh_database(ADMIN_URL, f"{NAME}_scaleout")
    env = exchange_env(url, run.data_dir)
    exchange(env, "db", "upgrade")
    clients = register(env)
    instances = {
        n: run.runner.start(
            f"api-scaleout-{n}",
            [str(BIN / "exchange"), "serve", "--port", str(port), "--workers", str(n)],
            env,
        )
        for n, port in PORTS.items()
    }
    try:
        for n, process in instances.items():
            await until_ready(process, PORTS[n])
        api = Api(PORTS[1], clients)
        await api.subscribe(RECEIVER_PORT)
        posted, rounds = 0, []
        for turn in range(scale.scaleout_rounds):
            measured = {}
            for n in (1, 2) if turn % 2 == 0 else (2, 1):
                notices = Notices(await api.token("MDI"), first=posted)
                measured[n] = await _measured(run, url, notices, processes=n, api=instances[n])
                posted = notices.next
            ratio = measured[2]["rps"] / measured[1]["rps"] if measured[1]["rps"] else 0.0
            first = next(iter(measured))  # the instance measured first this round
            rounds.append(
                {"first": first, "one": measured[1], "two": measured[2], "ratio": round(ratio, 3)}
            )
    finally:
        for process in instances.values():
            process.stop()
    run.details["scaleout"] = {
        "clients": scale.clients,
        "reconnect_every": RECONNECT_EVERY,
        "seconds": scale.intake_seconds,
        "notices_posted": posted,
        "rounds": rounds,
    }
    return {
        "scaleout_one_rps": round(statistics.median(r["one"]["rps"] for r in rounds), 1),
        "scaleout_two_rps": round(statistics.median(r["two"]["rps"] for r in rounds), 1),
        "scaleout_ratio": round(statistics.median(r["ratio"] for r in rounds), 3),
    }


async def _measured(run: Run, url: str, notices: Notices, *, processes: int, api: Process) -> dict:
    """One instance under intake's load after a VACUUM ANALYZE and a warm-up: its rate and
    latencies, and the CPU per notice of its processes, of the load generator, and of the
    machine."""
    scale = run.scale
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()
    port = PORTS[processes]
    load = {"clients": scale.clients, "reconnect_every": RECONNECT_EVERY}
    await closed_loop(HOST, port, notices.make, seconds=scale.warmup_seconds, **load)
    api_before, generator_before = api.cpu_seconds_by_process(), time.process_time()
    machine_before = machine_cpu_seconds()
    samples, elapsed = await closed_loop(
        HOST, port, notices.make, seconds=scale.intake_seconds, **load
    )
    machine = machine_cpu_seconds() - machine_before
    generator = time.process_time() - generator_before
    api_after = api.cpu_seconds_by_process()
    by_process = [after - api_before.get(pid, 0.0) for pid, after in api_after.items()]
    answered = max(len(samples), 1)
    return summary(samples, elapsed) | {
        "cpu_ms_per_request": round(1000 * sum(by_process) / answered, 2),
        "cpu_s_by_process": [round(s, 2) for s in by_process],  # the supervisor's first
        "load_cpu_ms_per_request": round(1000 * generator / answered, 2),
        "machine_busy_cores": round(machine / elapsed, 2),
    }
