"""The console served in process (httpx over ASGI): no browser, no OpenID provider, for the
defects an attacker's review found (issue 26). The session cookies are sealed with this
deployment's own secret, as a signed-in browser would hold them. Assets: an empty stand-in tree
(the pages' HTML does not need them). The suite's settings are built here again, since
tests/console/conftest.py's need the local OpenID provider."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.settings import Settings
from tests.conftest import ISSUER

SECRET = "inprocess-this-deployment-secret-0123456789abcdef"


def fake_assets(root: Path) -> Path:
    for sub in (
        "govuk-frontend/dist/govuk",
        "@ministryofjustice/frontend/moj",
        "@observablehq/plot/dist",
        "d3/dist",
    ):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "govuk-frontend/dist/govuk/govuk-frontend.min.css").write_text("")
    return root


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        issuer=ISSUER,
        webhook_allowed_cidrs=(ipaddress.ip_network("127.0.0.0/8"),),
        embedded_worker=False,
        worker_poll_seconds=0.05,
    ).model_copy(
        update={
            "oidc_issuer": "http://127.0.0.1:1/never-contacted",
            "oidc_client_id": "nps-exchange-console",
            "oidc_client_secret": "a-client-secret",
            "console_url": "http://testserver/console",
            "console_session_secret": SECRET,
            "console_assets_dir": fake_assets(tmp_path / "node_modules"),
        }
    )


@pytest.fixture
async def browser(app: FastAPI, world) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def session_cookie(app: FastAPI, sub: str, org: str, role: str | None = None) -> str:
    return app.state.console.cookies.seal_session({"sub": sub, "org": org, "role": role})


def signed_in(app: FastAPI, sub: str, org: str, role: str | None = None) -> dict[str, str]:
    """The headers of a browser signed in as this person."""
    return {"Cookie": "console_session=" + session_cookie(app, sub, org, role)}
