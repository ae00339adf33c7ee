"""Who is calling, as FastAPI dependencies: a handler states the scope it needs by the type of
its caller parameter (the verification itself is app/access/tokens.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.access.identity import Caller, Scope
from app.access.tokens import caller_of, no_token
from app.api.deps import Session
from app.wire.errors import Problem

_bearer = HTTPBearer(auto_error=False, description="An access token from POST /oauth/token.")


async def current_caller(
    request: Request,
    session: Session,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The caller its bearer token names, checked now; 401 if none, or not valid."""
    if credentials is None:
        raise no_token()
    state = request.app.state
    return await caller_of(
        session,
        credentials.credentials,
        issuer=state.settings.issuer,
        own_keys=state.keyring.verifiers(),
        trusted=state.trusted_issuer,
    )


def require(*scopes: Scope):
    """A caller holding the scope, or, given several, any one of them; else 403."""
    assert scopes

    async def dependency(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
        if not caller.scopes & set(scopes):
            wanted = " ".join(s.value for s in scopes)
            challenge = f'Bearer realm="nps-exchange", error="insufficient_scope", scope="{wanted}"'
            named = " or ".join(repr(s.value) for s in scopes)
            raise Problem(
                403,
                "Forbidden",
                f"This needs the {named} scope.",
                headers={"WWW-Authenticate": challenge},
            )
        return caller

    dependency.__name__ = "require_" + "_or_".join(s.name.lower() for s in scopes)
    dependency.scopes = frozenset(scopes)  # type: ignore[attr-defined]  # for the route checks
    return dependency


# Annotated aliases: a handler says which scope it needs by the type of its caller parameter.
PrisonCaller = Annotated[Caller, Depends(require(Scope.RELEASE_NOTICES_WRITE))]
ConsentWriter = Annotated[Caller, Depends(require(Scope.CONSENTS_WRITE))]
RecipientReader = Annotated[Caller, Depends(require(Scope.MESSAGES_READ))]
SubscriptionWriter = Annotated[Caller, Depends(require(Scope.SUBSCRIPTIONS_WRITE))]
AcknowledgementWriter = Annotated[Caller, Depends(require(Scope.ACKNOWLEDGEMENTS_WRITE))]
# A recipient reads its acknowledgements with either scope: a client that only acknowledges
# must see what it recorded, one that only reads its inbox may see what was recorded.
AcknowledgementReader = Annotated[
    Caller, Depends(require(Scope.MESSAGES_READ, Scope.ACKNOWLEDGEMENTS_WRITE))
]
UpdateWriter = Annotated[Caller, Depends(require(Scope.UPDATES_WRITE))]
AuditReader = Annotated[Caller, Depends(require(Scope.AUDIT_READ))]
Operator = Annotated[Caller, Depends(require(Scope.ADMIN))]
MetricsReader = Annotated[Caller, Depends(require(Scope.METRICS_READ))]
ReportReader = Annotated[Caller, Depends(require(Scope.REPORTS_READ))]
