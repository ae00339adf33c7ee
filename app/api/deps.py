"""What handlers need from the running app, as Annotated dependencies (built in create_app).

Each is `async def` though none awaits: FastAPI runs a plain `def` dependency in its thread
pool, a hand-off to a thread and back on every request for what is an attribute read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.signer import LogSigner
from app.keys.jose import KeyRing
from app.keys.sealing import DataKeys
from app.messages.signed import Signing
from app.settings import Settings
from app.storage import db


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the handler returns, before the response.
    The only place a request commits. Should the connection drop during the COMMIT itself,
    db.CommitLost says so: whether the database stored the request is then unknown."""
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with sessions() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        try:
            await session.commit()
        except Exception as exc:
            await session.rollback()
            if db.outage(exc) == "unavailable":
                raise db.CommitLost(type(exc).__name__) from exc
            raise


async def _settings(request: Request) -> Settings:
    return request.app.state.settings


async def _keyring(request: Request) -> KeyRing:
    return request.app.state.keyring


async def _data_keys(request: Request) -> DataKeys:
    return request.app.state.data_keys


async def _log_signer(request: Request) -> LogSigner:
    return request.app.state.log_signer


async def _signing(request: Request) -> Signing:
    return request.app.state.signing


async def _now() -> datetime:
    return datetime.now(UTC)


# scope="function": the commit runs as soon as the handler returns, so a failed commit becomes
# an error response instead of a 202 for data that was never stored.
Session = Annotated[AsyncSession, Depends(_request_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(_settings)]
KeyRingDep = Annotated[KeyRing, Depends(_keyring)]
DataKeysDep = Annotated[DataKeys, Depends(_data_keys)]
LogSignerDep = Annotated[LogSigner, Depends(_log_signer)]
SigningDep = Annotated[Signing, Depends(_signing)]
Now = Annotated[datetime, Depends(_now)]
