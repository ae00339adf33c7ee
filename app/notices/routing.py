"""Which organisations a notice goes to, and whether the caller may post it at all."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.identity import Caller
from app.notices.document import ReleaseNotice, implausible
from app.notices.plan import COMMUNITY_RELEASE
from app.storage.models import Organisation
from app.wire.errors import invalid

# Which member of the release plan names which kind of recipient.
ROUTES = (
    ("probation_provider", "probation_provider"),
    ("substance_misuse_service", "substance_misuse_service"),
)


async def route(
    session: AsyncSession, notice: ReleaseNotice
) -> tuple[list[tuple[Organisation, str]], list[dict[str, str]]]:
    """The registered, enabled organisations the release plan names, and an error for each
    code that names none."""
    wanted = [
        (member, role, getattr(notice.release_plan, member))
        for member, role in ROUTES
        if getattr(notice.release_plan, member)
    ]
    codes = {code for _, _, code in wanted}
    found = {
        o.code: o
        for o in await session.scalars(select(Organisation).where(Organisation.code.in_(codes)))
    }
    routed, errors = [], []
    for member, role, code in wanted:
        organisation = found.get(code)
        if organisation is None or organisation.kind != role or organisation.disabled_at:
            errors.append(
                {
                    "pointer": f"/release_plan/{member}",
                    "detail": f"{code!r} is not a registered {role.replace('_', ' ')}",
                }
            )
        else:
            routed.append((organisation, role))
    return routed, errors


async def validated(
    session: AsyncSession, notice: ReleaseNotice, *, caller: Caller, now: datetime
) -> list[tuple[Organisation, str]]:
    """The notice's recipients, or 422 with every failing field at once."""
    errors = []
    if notice.release.prison_code != caller.organisation_code:
        errors.append(
            {
                "pointer": "/release/prison_code",
                "detail": f"you act for {caller.organisation_code}: post only its releases",
            }
        )
    errors += implausible(notice, now)
    community = notice.release.reason == COMMUNITY_RELEASE
    recipients, unrouted = await route(session, notice) if community else ([], [])
    if errors or unrouted:
        raise invalid(errors + unrouted)
    return recipients
