"""The delivery baseline: a bare httpx loop POSTing the webhooks a worker sent, again.

It reads the requests the receiver captured (path, Standard Webhooks headers, body), and sends
each once to the same receiver, with as many in flight as a worker's pool allows, through one
httpx.AsyncClient: no database, no claiming, no signing, no recording. What a worker does beyond
this is its own cost. `python -m bench.bare_loop BASE_URL CAPTURED_FILE CONCURRENCY`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from pathlib import Path

import httpx


async def replay(base_url: str, captured: list[dict], concurrency: int) -> int:
    """Send every captured request once; how many were answered 2xx."""
    gate = asyncio.Semaphore(concurrency)
    ok = 0

    async def one(client: httpx.AsyncClient, request: dict) -> None:
        nonlocal ok
        async with gate:
            body = base64.b64decode(request["body"])
            response = await client.post(request["path"], content=body, headers=request["headers"])
            ok += response.is_success

    async with httpx.AsyncClient(base_url=base_url, trust_env=False) as client:
        await asyncio.gather(*(one(client, request) for request in captured))
    return ok


if __name__ == "__main__":
    requests = json.loads(Path(sys.argv[2]).read_text())
    print(asyncio.run(replay(sys.argv[1], requests, int(sys.argv[3]))))
