"""The operator's API: organisations and their clients."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Response
from sqlalchemy import select

from app.access import organisations as admin
from app.access.identity import CLIENT_ID
from app.api.callers import Operator
from app.api.deps import Now, Session
from app.api.pages import Cursor, Limit, after, next_offset
from app.api.problems import PROBLEMS, documented
from app.storage.models import ApiClient, Organisation
from app.wire.schemas import (
    ClientCreated,
    ClientIn,
    ClientOut,
    ClientPage,
    OrganisationIn,
    OrganisationOut,
    OrganisationPage,
    SecretRotated,
    SecretRotationIn,
)

router = APIRouter(prefix="/v1/organisations", tags=["organisations"])
Code = Annotated[str, Path(pattern=admin.CODE.pattern, description="e.g. MDI, N07")]
ClientId = Annotated[str, Path(pattern=CLIENT_ID, description="e.g. cli_AbC...")]
ANSWERS = {**PROBLEMS, 409: documented("It conflicts with what exists (a code taken, say).")}


def _organisation(o: Organisation) -> OrganisationOut:
    return OrganisationOut.model_validate(o, from_attributes=True)


def _client(c: ApiClient) -> ClientOut:
    return ClientOut(
        client_id=c.client_id,
        scopes=c.scopes,
        authentication="private_key_jwt" if c.public_jwk else "client_secret_basic",
        created_at=c.created_at,
        disabled_at=c.disabled_at,
        previous_secret_valid_until=c.previous_secret_expires_at,
    )


@router.post("", name="create", status_code=201, response_model=OrganisationOut, responses=ANSWERS)
async def create(
    body: OrganisationIn, response: Response, caller: Operator, session: Session, now: Now
) -> OrganisationOut:
    """Register an organisation."""
    organisation = await admin.add_organisation(
        session, kind=body.kind, code=body.code, name=body.name, now=now, actor=caller
    )
    response.headers["Location"] = f"/v1/organisations/{organisation.code}"
    return _organisation(organisation)


@router.get("", name="list", response_model=OrganisationPage, responses=ANSWERS)
async def list_organisations(
    _: Operator, session: Session, cursor: Cursor = None, limit: Limit = 50
) -> OrganisationPage:
    """Every organisation, oldest first."""
    rows = (
        await session.scalars(
            select(Organisation)
            .order_by(Organisation.created_at, Organisation.id)
            .offset(after(cursor))
            .limit(limit)
        )
    ).all()
    return OrganisationPage(
        items=[_organisation(o) for o in rows], next_cursor=next_offset(cursor, len(rows), limit)
    )


@router.get("/{code}", name="get", response_model=OrganisationOut, responses=ANSWERS)
async def get(code: Code, _: Operator, session: Session) -> OrganisationOut:
    """One organisation."""
    return _organisation(await admin.organisation_by_code(session, code))


@router.post("/{code}/disable", name="disable", response_model=OrganisationOut, responses=ANSWERS)
async def disable(code: Code, caller: Operator, session: Session, now: Now) -> OrganisationOut:
    """Disable it: every token of its clients stops working at once."""
    return _organisation(await admin.disable_organisation(session, code, now=now, actor=caller))


@router.post(
    "/{code}/clients",
    name="create-client",
    status_code=201,
    response_model=ClientCreated,
    responses=ANSWERS,
)
async def create_client(
    code: Code, body: ClientIn, response: Response, caller: Operator, session: Session, now: Now
) -> ClientCreated:
    """A client for the organisation: with a secret (shown once), or with its public key."""
    client, secret = await admin.add_client(
        session,
        organisation_code=code,
        scopes=body.scopes,
        public_key=body.public_key,
        now=now,
        actor=caller,
    )
    response.headers["Cache-Control"] = "no-store"
    return ClientCreated(**_client(client).model_dump(), client_secret=secret)


@router.get("/{code}/clients", name="list-clients", response_model=ClientPage, responses=ANSWERS)
async def list_clients(
    code: Code, _: Operator, session: Session, cursor: Cursor = None, limit: Limit = 50
) -> ClientPage:
    """The organisation's clients, without secrets."""
    organisation = await admin.organisation_by_code(session, code)
    rows = (
        await session.scalars(
            select(ApiClient)
            .where(ApiClient.organisation_id == organisation.id)
            .order_by(ApiClient.created_at, ApiClient.id)
            .offset(after(cursor))
            .limit(limit)
        )
    ).all()
    return ClientPage(
        items=[_client(c) for c in rows], next_cursor=next_offset(cursor, len(rows), limit)
    )


@router.post(
    "/{code}/clients/{client_id}/disable",
    name="disable-client",
    response_model=ClientOut,
    responses=ANSWERS,
)
async def disable_client(
    code: Code, client_id: ClientId, caller: Operator, session: Session, now: Now
) -> ClientOut:
    """Disable one client: its tokens stop working at once."""
    return _client(await admin.disable_client(session, code, client_id, now=now, actor=caller))


@router.post(
    "/{code}/clients/{client_id}/secret",
    name="rotate-secret",
    response_model=SecretRotated,
    responses=ANSWERS,
)
async def rotate_secret(
    code: Code,
    client_id: ClientId,
    body: SecretRotationIn,
    response: Response,
    caller: Operator,
    session: Session,
    now: Now,
) -> SecretRotated:
    """A new secret; the old one keeps working for overlap_seconds, so the client can switch."""
    client, secret = await admin.rotate_secret(
        session,
        code,
        client_id,
        overlap=timedelta(seconds=body.overlap_seconds),
        now=now,
        actor=caller,
    )
    response.headers["Cache-Control"] = "no-store"
    return SecretRotated(
        client_id=client.client_id,
        client_secret=secret,
        previous_secret_valid_until=client.previous_secret_expires_at,
    )
