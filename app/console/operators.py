"""The operators' pages: organisations and their clients (list, register, disable, rotate a
secret), through the same use cases as the operators' API (app/access/organisations.py), each
change logged as the person; and the subscriptions' health and the keys' IDs. A new secret is
shown once, on the page that answers the form, never again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import case, func, select

from app.access import organisations as admin
from app.access.identity import ORGANISATION_KINDS, Scope
from app.console.web import Form, Person, Refusal, SignedIn, Transaction, needs, render
from app.messages import states
from app.storage.models import ApiClient, Delivery, Organisation, Subscription

router = APIRouter(prefix="/console/operators", tags=["console"], include_in_schema=False)
ROTATION_OVERLAP = timedelta(hours=24)  # the old secret keeps working this long


async def _organisations(session: Any) -> list[Organisation]:
    query = select(Organisation).order_by(Organisation.kind, Organisation.code)
    return list((await session.scalars(query)).all())


async def _list(request: Request, person: Person, session: Any, **context: Any) -> HTMLResponse:
    return render(
        request,
        "operators.html",
        person=person,
        title="Organisations",
        section="operators",
        organisations=await _organisations(session),
        kinds=ORGANISATION_KINDS,
        **{"errors": {}, "given": {}, "status": 200, **context},
    )


@router.get("", response_class=HTMLResponse)
async def organisations(request: Request, person: SignedIn, session: Transaction) -> HTMLResponse:
    needs(person, Scope.ADMIN)
    return await _list(request, person, session)


@router.post("", response_class=HTMLResponse)
async def register(
    request: Request, person: SignedIn, form: Form, *, session: Transaction
) -> Response:
    needs(person, Scope.ADMIN)
    given = {k: form.get(k, "").strip() for k in ("kind", "code", "name")}
    try:
        await admin.add_organisation(session, **given, now=datetime.now(UTC), actor=person.caller)
    except admin.AdminError as error:
        field = error.pointer.strip("/") or "code"
        page = await _list(request, person, session, errors={field: str(error)}, given=given)
        page.status_code = 409 if error.conflict else 400
        return page
    return RedirectResponse(f"/console/operators/{given['code']}?registered=1", status_code=303)


async def _one(request: Request, person: Person, session: Any, *, code: str, **context: Any):
    try:
        organisation = await admin.organisation_by_code(session, code)
    except admin.AdminError as error:
        raise Refusal(404, "Page not found", "There is no organisation with this code.") from error
    clients = (
        await session.scalars(
            select(ApiClient)
            .where(ApiClient.organisation_id == organisation.id)
            .order_by(ApiClient.created_at)
        )
    ).all()
    return render(
        request,
        "organisation.html",
        person=person,
        title=f"{organisation.name} ({organisation.code})",
        section="operators",
        organisation=organisation,
        clients=clients,
        registered=request.query_params.get("registered") == "1",
        **{"secret": None, "error": None, **context},
    )


@router.get("/{code}", response_class=HTMLResponse)
async def organisation(
    request: Request, code: str, person: SignedIn, *, session: Transaction
) -> HTMLResponse:
    needs(person, Scope.ADMIN)
    return await _one(request, person, session, code=code)


@router.post("/{code}/{action}", response_class=HTMLResponse)
async def change(
    request: Request, code: str, action: str, *, person: SignedIn, form: Form, session: Transaction
) -> HTMLResponse:
    """disable (the organisation), add-client, disable-client, rotate-secret."""
    needs(person, Scope.ADMIN)
    now, actor, client_id = datetime.now(UTC), person.caller, form.get("client_id", "")
    secret = None
    try:
        if action == "disable":
            await admin.disable_organisation(session, code, now=now, actor=actor)
        elif action == "add-client":
            client, secret = await admin.add_client(
                session, organisation_code=code, scopes=None, now=now, actor=actor
            )
            client_id = client.client_id
        elif action == "disable-client":
            await admin.disable_client(session, code, client_id, now=now, actor=actor)
        elif action == "rotate-secret":
            _, secret = await admin.rotate_secret(
                session, code, client_id, overlap=ROTATION_OVERLAP, now=now, actor=actor
            )
        else:
            raise Refusal(404, "Page not found", "There is no such action.")
    except admin.AdminError as error:
        return await _one(request, person, session, code=code, error=str(error))
    await session.flush()
    return await _one(
        request, person, session, code=code, secret=(client_id, secret) if secret else None
    )


@router.get("-health", response_class=HTMLResponse)
async def health(request: Request, person: SignedIn, session: Transaction) -> HTMLResponse:
    """Each subscription's deliveries by state, its last success; the keys' IDs."""
    needs(person, Scope.ADMIN)
    pending = func.sum(case((Delivery.state == states.PENDING, 1), else_=0))
    dead = func.sum(case((Delivery.state == states.DEAD, 1), else_=0))
    rows = (
        await session.execute(
            select(
                Subscription,
                Organisation.code,
                func.count(Delivery.id),
                pending,
                dead,
                func.max(Delivery.delivered_at),
            )
            .join(Organisation, Organisation.id == Subscription.organisation_id)
            .outerjoin(Delivery, Delivery.subscription_id == Subscription.id)
            .where(Subscription.status != "deleted")
            .group_by(Subscription.id, Organisation.code)
            .order_by(Organisation.code, Subscription.created_at)
        )
    ).all()
    keyring, signer = request.app.state.keyring, request.app.state.log_signer
    return render(
        request,
        "health.html",
        person=person,
        title="Subscriptions and keys",
        section="health",
        subscriptions=[
            {
                "subscription": s,
                "code": code,
                "deliveries": n,
                "pending": p or 0,
                "dead": d or 0,
                "last_delivered": last,
            }
            for s, code, n, p, d, last in rows
        ],
        signing_current=keyring.current.kid,
        signing_published=[k.kid for k in keyring.published()],
        signing_history=keyring.history(),
        log_key=(signer.origin, signer.key_id, signer.verifier_key),
    )
