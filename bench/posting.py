"""Post release notices to an exchange in process, as a prison would, and time each POST.

A bench world: the example's organisations (prison MDI, probation N07, treatment SMS-LEEDS),
a webhook subscription for each recipient (nothing is sent: the app runs without its worker),
and notices that are the canonical example about a different person each time.

    python -m bench.posting DATABASE_URL DATA_DIR COUNT [again]

migrates the database, sets the world up if it is not there yet, posts COUNT notices one after
the other and prints the p50 and p90 of their latencies; with "again", then COUNT more about
the same people, released again with their consent recorded anew.
"""

from __future__ import annotations

import asyncio
import ipaddress
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from app.access import organisations as admin
from app.main import create_app
from app.notices import examples
from app.settings import Settings
from app.storage import migrate
from app.storage.models import Organisation
from bench.world import noms_number

ISSUER = "http://exchange.bench"
HOOK = "http://127.0.0.1:9/hook"  # never called: no worker runs
ORGANISATIONS = [
    ("prison", "MDI"),
    ("probation_provider", "N07"),
    ("substance_misuse_service", "SMS-LEEDS"),
]
TOKEN_SECONDS = 240  # a fresh token before the 300 s ones run out


@dataclass
class Bench:
    api: httpx.AsyncClient
    credentials: tuple[str, str]
    token: str = ""
    token_at: float = 0.0

    async def headers(self) -> dict[str, str]:
        if time.monotonic() - self.token_at > TOKEN_SECONDS:
            answer = await self.api.post(
                "/oauth/token", data={"grant_type": "client_credentials"}, auth=self.credentials
            )
            answer.raise_for_status()
            self.token, self.token_at = answer.json()["access_token"], time.monotonic()
        return {"authorization": f"Bearer {self.token}"}


def notice(n: int, *, again: bool = False) -> dict[str, Any]:
    """The example about person n; `again`: released again, their consent recorded anew."""
    body = examples.release_notice(datetime.now(UTC).date())
    body["person"]["noms_number"] = noms_number(n)
    if again:
        for consent in body["consent"]:
            consent["recorded_at"] = examples.moved(consent["recorded_at"], timedelta(hours=1))
    return body


async def _credentials(app: Any, api: httpx.AsyncClient) -> tuple[str, str]:
    """The bench prison's client; the first time, the organisations and subscriptions too."""
    now = datetime.now(UTC)
    async with app.state.sessions() as session, session.begin():
        known = await session.scalar(select(Organisation.id).where(Organisation.code == "MDI"))
        if known is None:
            for kind, code in ORGANISATIONS:
                await admin.add_organisation(
                    session, kind=kind, code=code, name=f"{code} bench", now=now
                )
            await session.flush()
        clients = {}
        for _, code in ORGANISATIONS:
            client, secret = await admin.add_client(
                session, organisation_code=code, scopes=None, now=now
            )
            clients[code] = (client.client_id, secret or "")
    if known is None:
        for code in ("N07", "SMS-LEEDS"):
            recipient = Bench(api, clients[code])
            answer = await api.post(
                "/v1/subscriptions", json={"url": HOOK}, headers=await recipient.headers()
            )
            answer.raise_for_status()
    return clients["MDI"]


@asynccontextmanager
async def bench(database_url: str, data_dir: Path) -> AsyncIterator[Bench]:
    """The exchange app on this (migrated) database, without its worker, and a prison client."""
    settings = Settings(
        database_url=database_url,
        data_dir=data_dir,
        issuer=ISSUER,
        webhook_allowed_cidrs=(ipaddress.ip_network("127.0.0.0/8"),),
        embedded_worker=False,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as api:
            yield Bench(api, await _credentials(app, api))


async def post_notices(
    bench: Bench, count: int, *, first: int | None = None, again: bool = False
) -> list[float]:
    """Post `count` notices one after another, each about a new person; each one's seconds.

    People are numbered from `first` (default: a random start, so runs do not collide); with
    `again`, they were posted before and are released again."""
    start = first if first is not None else uuid.uuid4().int % (26 * 10**4 * 600)
    seconds = []
    for n in range(start, start + count):
        body, headers = notice(n, again=again), await bench.headers()
        headers["idempotency-key"] = str(uuid.uuid4())
        began = time.perf_counter()
        answer = await bench.api.post("/v1/release-notices", json=body, headers=headers)
        seconds.append(time.perf_counter() - began)
        if answer.status_code != 202:
            raise RuntimeError(f"notice {n}: {answer.status_code} {answer.text}")
    return seconds


def summary(seconds: list[float]) -> str:
    cuts = statistics.quantiles(seconds, n=10)
    return f"n={len(seconds)} p50={cuts[4] * 1000:.1f} ms p90={cuts[8] * 1000:.1f} ms"


async def main(database_url: str, data_dir: str, count: int, again: bool) -> None:
    first = uuid.uuid4().int % (26 * 10**4 * 600)
    async with bench(database_url, Path(data_dir)) as world:
        print("new people:", summary(await post_notices(world, count, first=first)), flush=True)
        if again:
            seconds = await post_notices(world, count, first=first, again=True)
            print("released again:", summary(seconds), flush=True)


if __name__ == "__main__":
    migrate.upgrade(sys.argv[1])  # runs its own event loop
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:] == ["again"]))
