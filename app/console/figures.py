"""The overview's figures: aggregates only, never a person. Notices a week by prison,
disclosures by recipient kind, fields withheld by rule and reason, deliveries by state and
their latency, acknowledgement timeliness and overdue deadlines (the timeliness report and the
deadlines' diary), and the continuity-of-care rate by prison and month (the continuity report,
its small-number suppression applied). Every count from 1 to 4 is suppressed (None), as the
reports suppress them (app/reports/suppression.py), and so is what is worked out from so few
(a latency's percentiles); no figure has a total, so none is given away by difference. Read
only; the page's transaction is the caller's."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.deadlines.rules import Windows
from app.messages import states
from app.reports import reporting
from app.reports.grouping import Asked, percentile
from app.reports.suppression import small
from app.storage.models import Deadline, Delivery, Disclosure, Organisation, StoredNotice

WEEKS = 12
MONTHS = 12
AHEAD_DAYS = 92  # releases due up to three months ahead (a notice comes before its release)
NATIONAL_2023_24 = 0.53  # continuity of care, England, 2023-24
AMBITION = 0.75


def _shown(count: int) -> int | None:
    """A count as the overview shows it: None when it is 1 to 4."""
    return None if small(count) else count


def _week(moment: datetime) -> str:
    """The Monday of the moment's ISO week, as YYYY-MM-DD."""
    day = moment.astimezone(UTC).date()
    return (day - timedelta(days=day.weekday())).isoformat()


async def _codes(session: AsyncSession) -> dict[Any, tuple[str, str]]:
    rows = (
        await session.execute(select(Organisation.id, Organisation.code, Organisation.kind))
    ).all()
    return {id_: (code, kind) for id_, code, kind in rows}


async def notices_by_week(session: AsyncSession, since: datetime) -> list[dict[str, Any]]:
    codes = await _codes(session)
    rows = (
        await session.execute(
            select(StoredNotice.organisation_id, StoredNotice.received_at).where(
                StoredNotice.received_at >= since, StoredNotice.version == 1
            )
        )
    ).all()
    counted = Counter((_week(at), codes[org][0]) for org, at in rows)
    return [{"week": w, "prison": p, "notices": _shown(n)} for (w, p), n in sorted(counted.items())]


async def disclosures(session: AsyncSession, since: datetime) -> dict[str, list[dict[str, Any]]]:
    rows = (
        await session.execute(
            select(Disclosure.recipient_role, Disclosure.manifest).where(
                Disclosure.decided_at >= since
            )
        )
    ).all()
    kinds = Counter(role for role, _ in rows)
    withheld = Counter((w["rule"], w["reason"]) for _, manifest in rows for w in manifest or [])
    return {
        "by_kind": [{"kind": k, "disclosures": _shown(n)} for k, n in sorted(kinds.items())],
        "withheld": [
            {"rule": r, "reason": why, "fields": _shown(n)}
            for (r, why), n in sorted(withheld.items(), key=lambda i: (-i[1], i[0]))
        ],
    }


async def deliveries(session: AsyncSession, since: datetime) -> dict[str, Any]:
    rows = (
        await session.execute(
            select(
                Delivery.state, Delivery.attempts, Delivery.created_at, Delivery.delivered_at
            ).where(Delivery.created_at >= since)
        )
    ).all()
    state = Counter(
        "retrying"
        if s == states.PENDING and attempts
        else ("waiting" if s == states.PENDING else s)
        for s, attempts, _, _ in rows
    )
    latency: dict[str, list[float]] = {}
    for s, _, created, delivered in rows:
        if s == states.DELIVERED and delivered is not None:
            latency.setdefault(_week(created), []).append((delivered - created).total_seconds())
    return {
        "by_state": [
            {"state": s, "deliveries": _shown(state.get(s, 0))}
            for s in ("delivered", "waiting", "retrying", "dead", states.REVOKED, states.SUPERSEDED)
            if state.get(s) or s in ("delivered", "retrying", "dead")
        ],
        "latency": [
            {
                "week": w,
                "median_seconds": None if small(len(v)) else percentile(v, 0.5),
                "p90_seconds": None if small(len(v)) else percentile(v, 0.9),
                "delivered": _shown(len(v)),
            }
            for w, v in sorted(latency.items())
        ],
    }


async def overdue(session: AsyncSession, now: datetime) -> list[dict[str, Any]]:
    """Per kind of deadline: alerted as overdue, and passed unmet now (still open)."""
    alerted = dict(
        (
            await session.execute(
                select(Deadline.kind, func.count())
                .where(Deadline.alerted_at.is_not(None))
                .group_by(Deadline.kind)
            )
        ).all()
    )
    open_now = dict(
        (
            await session.execute(
                select(Deadline.kind, func.count())
                .where(
                    Deadline.due_at < now, Deadline.met_at.is_(None), Deadline.stopped_at.is_(None)
                )
                .group_by(Deadline.kind)
            )
        ).all()
    )
    return [
        {
            "kind": k,
            "alerted": _shown(alerted.get(k, 0)),
            "overdue_now": _shown(open_now.get(k, 0)),
        }
        for k in ("receipt", "engagement", "at_risk")
    ]


async def timeliness(
    session: AsyncSession, start: date, end: date, *, windows: Windows, now: datetime
) -> list[dict[str, Any]]:
    report = await reporting.timeliness_of(
        session, Asked(start, end, "month"), windows=windows, now=now
    )
    return [
        {
            "month": r.group,
            "recipient_kind": r.recipient_kind,
            "acknowledged": r.receipt.count,
            "median_hours": r.receipt.median_hours,
            "p90_hours": r.receipt.p90_hours,
            "share_overdue": r.receipt.share_overdue,
        }
        for r in report.rows
    ]


async def continuity(
    session: AsyncSession, start: date, end: date, *, windows: Windows, now: datetime
) -> list[dict[str, Any]]:
    """The rate per prison and month: one continuity report (by month) per prison."""
    prisons = (
        await session.execute(
            select(Organisation.id, Organisation.code)
            .where(Organisation.kind == "prison")
            .order_by(Organisation.code)
        )
    ).all()
    found = []
    for prison_id, code in prisons:
        report = await reporting.continuity_of_care(
            session, Asked(start, end, "month", prison_id), windows=windows, now=now
        )
        for g in report.groups:
            if g.released == 0:
                continue
            found.append(
                {
                    "prison": code,
                    "month": g.group,
                    "released": g.released,
                    "engaged": g.engaged_within_21_days,
                    "rate": g.rate,
                    "provisional": g.provisional,
                    "suppressed": bool(g.suppressed),
                }
            )
    return found


async def overview(session: AsyncSession, *, windows: Windows, now: datetime) -> dict[str, Any]:
    since = now - timedelta(weeks=WEEKS)
    today = now.astimezone(UTC).date()
    year_ago = (today.replace(day=1) - timedelta(days=31 * (MONTHS - 1))).replace(day=1)
    ahead = today + timedelta(days=AHEAD_DAYS)
    return {
        "notices": await notices_by_week(session, since),
        "disclosures": await disclosures(session, since),
        "deliveries": await deliveries(session, since),
        "overdue": await overdue(session, now),
        # Notices arrive before the release: releases due in the coming months are counted too.
        "timeliness": await timeliness(session, year_ago, ahead, windows=windows, now=now),
        "continuity": await continuity(session, year_ago, ahead, windows=windows, now=now),
        "references": {"national_2023_24": NATIONAL_2023_24, "ambition": AMBITION},
        "weeks": WEEKS,
        "months": MONTHS,
    }
