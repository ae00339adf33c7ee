"""What handlers need from the running app, as Annotated dependencies (built in create_app)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request

from app.jose import KeyRing
from app.policy import Policy
from app.settings import Settings


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _keyring(request: Request) -> KeyRing:
    return request.app.state.keyring


def _policy(request: Request) -> Policy:
    return request.app.state.policy


def _now() -> datetime:
    return datetime.now(UTC)


SettingsDep = Annotated[Settings, Depends(_settings)]
KeyRingDep = Annotated[KeyRing, Depends(_keyring)]
PolicyDep = Annotated[Policy, Depends(_policy)]
Now = Annotated[datetime, Depends(_now)]
