"""One worker draining a backlog, again and again, beside the bare httpx loop: the delivery
phase of `make bench` without refilling the backlog each time.

`python -m bench.drain [--notices N] [--runs R] [--refill]` fills a backlog once (N notices
through the API, two deliveries each, no worker running) and keeps it as a template database;
each run then copies the template, drains it with one `exchange worker` process, and replays the
captured requests with the bare loop (bench/bare_loop.py) at the same number in flight. Per run
it prints both rates (receiver's first arrival to its last, as the delivery phase counts them),
their ratio, and the worker process's CPU per delivery (/proc/<pid>/stat, from its first
delivery to its last, so start-up is not counted); then the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import time
from pathlib import Path

import asyncpg

from bench import phases
from bench.httpload import closed_loop
from bench.phases import API_PORT, RECEIVER_PORT, receiver
from bench.world import (
    ADMIN_URL,
    BIN,
    HOST,
    NAME,
    Api,
    Notices,
    Runner,
    asyncpg_dsn,
    catch_up_log,
    cpu_seconds,
    exchange,
    exchange_env,
    fresh_database,
    register,
    until_listening,
)

HERE = Path(__file__).resolve().parent
TEMPLATE, DRAIN = f"{NAME}_backlog", f"{NAME}_drain"
COMMITS = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
IN_FLIGHT = 8  # the pool's default: 4 per subscription, 2 subscriptions


async def fill(runner: Runner, work_dir: Path, notices: int) -> None:
    url = await fresh_database(ADMIN_URL, TEMPLATE)
    env = exchange_env(url, work_dir / "data")
    exchange(env, "db", "upgrade")
    clients = register(env)
    serve = [str(BIN / "exchange"), "serve", "--port", str(API_PORT)]
    api_process = runner.start("api", serve, env)
    try:
        await until_listening(api_process, API_PORT)
        api = Api(API_PORT, clients)
        await api.subscribe(RECEIVER_PORT)
        made = Notices(await api.token("MDI"))
        posted = 0
        while posted < notices:
            samples, _ = await closed_loop(
                HOST, API_PORT, made.make, clients=8, requests=min(notices - posted, 3000)
            )
            posted += sum(s.status == 202 for s in samples)
            made = Notices(await api.token("MDI"), first=made.next)
    finally:
        api_process.stop()


async def sql(url: str, query: str) -> object:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return await connection.fetchval(query)
    finally:
        await connection.close()


async def copy_template() -> str:
    return await fresh_database(ADMIN_URL, DRAIN, template=TEMPLATE)


async def count() -> int:
    return (await receiver("GET", "/_stats"))["count"]


async def drain(runner: Runner, work_dir: Path) -> dict:
    url = await copy_template()
    pending = await sql(url, "SELECT count(*) FROM delivery WHERE state = 'pending'")
    await catch_up_log(url, work_dir / "data")  # as the delivery phase does ...
    await sql(url, "VACUUM ANALYZE")  # ... and this
    await receiver("POST", "/_reset")
    worker = runner.start(
        "worker", [str(BIN / "exchange"), "worker"], exchange_env(url, work_dir / "data")
    )
    try:
        while (first := await count()) == 0:
            worker.check()
            await asyncio.sleep(0.005)
        cpu0 = cpu_seconds(worker.popen.pid)
        commits0 = await sql(url, COMMITS)
        deadline = time.monotonic() + 300
        while (last := await count()) < pending and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        cpu1 = cpu_seconds(worker.popen.pid)
        commits1 = await sql(url, COMMITS)
    finally:
        worker.stop()
    worker_rate = phases.rate(await receiver("GET", "/_arrivals"))
    captured = await receiver("GET", "/_captured")
    replay = work_dir / "captured.json"
    replay.write_text(json.dumps(captured))
    await receiver("POST", "/_reset")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = await asyncio.create_subprocess_exec(
        phases.PYTHON,
        "-m",
        "bench.bare_loop",
        f"http://{HOST}:{RECEIVER_PORT}",
        str(replay),
        str(IN_FLIGHT),
        stdout=asyncio.subprocess.DEVNULL,
    )
    await done.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    bare_rate = phases.rate(await receiver("GET", "/_arrivals"))
    bare_cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {
        "pending": pending,
        "delivered": last,
        "worker_rps": round(worker_rate, 1),
        "bare_rps": round(bare_rate, 1),
        "ratio": round(worker_rate / bare_rate, 3),
        "worker_cpu_ms": round(1000 * (cpu1 - cpu0) / max(1, last - first), 3),
        "commits_per_delivery": round((commits1 - commits0) / max(1, last - first), 3),
        "bare_cpu_ms_with_startup": round(1000 * bare_cpu / max(1, len(captured)), 3),
    }


async def main(notices: int, runs: int, refill: bool) -> None:
    work_dir = HERE / "var" / "drain"
    work_dir.mkdir(parents=True, exist_ok=True)
    runner = Runner(work_dir)
    try:
        env = exchange_env(ADMIN_URL, work_dir / "data")
        receiver_process = runner.start(
            "receiver", [phases.PYTHON, "-m", "bench.receiver", str(RECEIVER_PORT)], env
        )
        await until_listening(receiver_process, RECEIVER_PORT)
        if refill or not (work_dir / "data").exists():
            await fill(runner, work_dir, notices)
        results = []
        for _ in range(runs):
            results.append(await drain(runner, work_dir))
            print(results[-1], flush=True)
        for key in ("worker_rps", "bare_rps", "ratio", "worker_cpu_ms", "commits_per_delivery"):
            print(f"median {key}: {statistics.median(r[key] for r in results)}")
    finally:
        runner.stop_all()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.drain")
    parser.add_argument("--notices", type=int, default=1500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--refill", action="store_true")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.notices, arguments.runs, arguments.refill))
