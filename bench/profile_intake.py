"""What one notice costs, counted rather than timed: SQL statements, and Python calls.

`python -m bench.profile_intake [COUNT] [--json]` builds a fresh PostgreSQL world (as `make
bench` does), runs the app in process, posts COUNT notices one after another (each a new
person, so each a first version; both recipients subscribed; no sequencer running), and prints
per notice: the statements sent (by kind), the Python function calls made (under cProfile) and
the CPU time; with --json, the counts as JSON, as the intake phase of `python -m bench` takes
them. Counts are the same run to run on any machine, so they compare two versions of the code
where timings on a shared machine cannot.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from sqlalchemy import event

from app.main import create_app
from app.settings import Settings
from bench.world import (
    ADMIN_URL,
    NAME,
    RECIPIENTS,
    Notices,
    exchange,
    exchange_env,
    fresh_database,
    register,
)


async def counted(count: int) -> tuple[Counter[str], int, float]:
    """COUNT notices posted in process on a fresh world, after 20 untimed: the statements sent
    (by their first three words), the Python calls made and the CPU seconds, all in all."""
    url = await fresh_database(ADMIN_URL, f"{NAME}_profile")
    data_dir = Path(tempfile.mkdtemp(prefix="exchange-profile-"))
    env = exchange_env(url, data_dir)
    exchange(env, "db", "upgrade")
    clients = register(env)
    os.environ.update({k: v for k, v in env.items() if k.startswith("EXCHANGE_")})
    app = create_app(Settings())  # settings read from the environment just set
    statements: Counter[str] = Counter()
    async with app.router.lifespan_context(app):
        engine = app.state.sessions.kw["bind"].sync_engine

        def note(_conn, _cursor, statement, *_args) -> None:
            statements[" ".join(statement.split()[:3])] += 1

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:

            async def token(code: str) -> str:
                client = clients[code]
                auth = (client["client_id"], client["client_secret"])
                answer = await http.post(
                    "/oauth/token", data={"grant_type": "client_credentials"}, auth=auth
                )
                return answer.json()["access_token"]

            for code in RECIPIENTS:
                await http.post(
                    "/v1/subscriptions",
                    json={"url": f"http://127.0.0.1:9/hooks/{code}"},
                    headers={"authorization": f"Bearer {await token(code)}"},
                )
            notices = Notices(await token("MDI"))

            async def post() -> None:
                (_, path, headers, body), _ = notices.make()
                answer = await http.post(path, content=body, headers=headers)
                assert answer.status_code == 202, answer.text

            for _ in range(20):  # warm: caches, prepared statements, pool
                await post()
            event.listen(engine, "before_cursor_execute", note)
            profile = cProfile.Profile(time.process_time)
            cpu = time.process_time()
            profile.enable()
            for _ in range(count):
                await post()
            profile.disable()
            cpu = time.process_time() - cpu
    return statements, pstats.Stats(profile).total_calls, cpu


async def apart(env: dict[str, str], count: int = 50) -> dict:
    """This count in a process of its own (its own database and data directory), as the intake
    phase of `python -m bench` takes it: the JSON it prints."""
    done = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bench.profile_intake", str(count), "--json"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await done.communicate()
    if done.returncode:
        raise RuntimeError(f"bench.profile_intake failed ({done.returncode})")
    return json.loads(out)


async def main(count: int, as_json: bool) -> None:
    statements, calls, cpu = await counted(count)
    if as_json:  # for the intake phase of `python -m bench`
        by_kind = {s: round(n / count, 2) for s, n in statements.most_common()}
        per_notice = round(sum(statements.values()) / count, 2)
        print(
            json.dumps(
                {
                    "notices": count,
                    "statements": per_notice,
                    "by_kind": by_kind,
                    "python_calls": round(calls / count),
                }
            )
        )
        return
    print(f"{count} notices, per notice: {sum(statements.values()) / count:.1f} statements,")
    print(f"{calls / count:,.0f} Python calls, {1000 * cpu / count:.1f} ms CPU under cProfile")
    for statement, n in statements.most_common():
        print(f"  {n / count:5.2f}  {statement}")


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if a != "--json"]
    asyncio.run(main(int(arguments[0]) if arguments else 200, "--json" in sys.argv[1:]))
