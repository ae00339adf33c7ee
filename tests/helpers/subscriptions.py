"""Webhook subscriptions through the API, as their owner (N07 unless told) makes and reads them."""

from __future__ import annotations

from typing import Any

import httpx

HOOK = "http://127.0.0.1:9/hook"


async def subscribe(world, code: str = "N07", url: str = HOOK) -> dict[str, Any]:
    response = await world.api.post(
        "/v1/subscriptions", json={"url": url}, headers=await world.headers(code)
    )
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/v1/subscriptions/{response.json()['id']}"
    return response.json()


async def get(world, path: str, code: str = "N07") -> httpx.Response:
    return await world.api.get(path, headers=await world.headers(code))
