"""What one delivery costs the worker, counted rather than timed: SQL statements, transactions
and Python calls.

`python -m bench.profile_delivery` needs the backlog `python -m bench.drain` keeps (its template
database and data keys): it copies the template, starts the bench receiver, and runs the worker
(app.worker.loop.run_forever, the pool `exchange worker` runs) in this process until every pending
delivery has arrived. It prints per delivery: statements sent (by kind), transactions begun,
Python function calls (under cProfile) and CPU time. Counts barely vary run to run, so they
compare two versions of the code where timings on a shared machine cannot.
"""

from __future__ import annotations

import asyncio
import cProfile
import os
import pstats
import time
from collections import Counter

from sqlalchemy import event

from app.keys.sealing import load_data_keys
from app.settings import Settings
from app.storage.db import make_engine, make_sessionmaker
from app.worker.loop import http_client, run_forever
from bench import phases
from bench.drain import HERE, copy_template, sql
from bench.phases import RECEIVER_PORT, receiver
from bench.world import Runner, catch_up_log, exchange_env, until_listening


async def main() -> None:
    work_dir = HERE / "var" / "drain"
    url = await copy_template()
    pending = await sql(url, "SELECT count(*) FROM delivery WHERE state = 'pending'")
    await catch_up_log(url, work_dir / "data")  # as the delivery phase does
    env = exchange_env(url, work_dir / "data")
    os.environ.update({k: v for k, v in env.items() if k.startswith("EXCHANGE_")})
    runner = Runner(work_dir)
    statements: Counter[str] = Counter()
    try:
        process = runner.start(
            "receiver", [phases.PYTHON, "-m", "bench.receiver", str(RECEIVER_PORT)], env
        )
        await until_listening(process, RECEIVER_PORT)
        settings = Settings()
        engine = make_engine(settings.database_url)

        def note(_conn, _cursor, statement, *_args) -> None:
            statements[" ".join(statement.split()[:3])[:60]] += 1

        event.listen(engine.sync_engine, "before_cursor_execute", note)
        begun = Counter()
        event.listen(engine.sync_engine, "begin", lambda _c: begun.update(["begin"]))
        stop = asyncio.Event()
        data_keys = load_data_keys(settings.sealing_keys_dir)
        profile = cProfile.Profile(time.process_time)
        async with http_client(settings.webhook_timeout_seconds) as client:
            worker = asyncio.create_task(
                run_forever(
                    make_sessionmaker(engine),
                    client,
                    settings,
                    data_keys=data_keys,
                    signing=None,  # deliveries alone are profiled
                    stop=stop,
                )
            )
            cpu = time.process_time()
            profile.enable()
            while (await receiver("GET", "/_stats"))["count"] < pending:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            stop.set()
            await worker
            profile.disable()
            cpu = time.process_time() - cpu
        await engine.dispose()
    finally:
        runner.stop_all()
    if os.environ.get("PROFILE_OUT"):
        profile.dump_stats(os.environ["PROFILE_OUT"])
    calls = pstats.Stats(profile).total_calls
    total = sum(statements.values())
    print(f"{pending} deliveries, per delivery: {total / pending:.2f} statements,")
    print(f"{begun['begin'] / pending:.3f} transactions, {calls / pending:,.0f} Python calls,")
    print(f"{1000 * cpu / pending:.2f} ms CPU under cProfile (start-up included)")
    for statement, n in statements.most_common():
        print(f"  {n / pending:6.3f}  {statement}")


if __name__ == "__main__":
    asyncio.run(main())
