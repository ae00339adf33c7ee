"""The console's table (app/console): the sessions that have ended before their cookie expires.
Typed columns, no behaviour; beside app/storage/models.py."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.storage.columns import Base, UTCDateTime


class ConsoleSessionEnded(Base):
    """A console session signed out: its cookie (which holds the session's ID) is refused from
    then on. Kept until the cookie would have expired anyway (expires_at), then purged."""

    __tablename__ = "console_session_ended"

    # The SHA-256 (hex) of the session's ID, never the ID itself.
    session_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
