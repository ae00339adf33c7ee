"""The care updates' table (app/updates), beside the others of app/storage/models.py, which
imports it: a model names another by its class name, resolved when every table is known."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Date, ForeignKey, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.storage.columns import Base, UTCDateTime

if TYPE_CHECKING:
    from app.storage.models import StoredNotice


class CareUpdate(Base):
    """An update one recipient of a release shared with the other (app/updates). Its body is
    sealed like a notice's, so that a lost consent can decide it again, and purged with the
    notice's data; what each recipient was sent is its disclosure rows and messages."""

    __tablename__ = "care_update"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    series_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)  # the release
    # The release notice's version in force when it was posted.
    notice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("release_notice.id"), index=True)
    _notice: Mapped[StoredNotice] = relationship(lazy="raise")  # flush order only
    person_ref: Mapped[str] = mapped_column(String(64), index=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisation.id"))
    client_id: Mapped[str] = mapped_column(String(64))
    author_role: Mapped[str] = mapped_column(String(32))
    # The message the author posted it about: one it received about the release. No foreign
    # key: a message names its disclosure, which names its update, and tables stay in order.
    about_message_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    body_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    body_key_id: Mapped[str | None] = mapped_column(String(64))
    body_sha256: Mapped[str] = mapped_column(String(64))
    # A recall or return to custody, in clear (a date names nobody): it closes the release.
    recall_date: Mapped[date | None] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


__all__ = ["CareUpdate"]
