"""create_app(settings): the only place the running parts are built."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute

from app.access.throttle import FailureThrottle
from app.access.tokens import TrustedIssuer
from app.api import (
    acknowledgements,
    audit,
    consents,
    docs,
    encryption_key,
    health,
    messages,
    notices,
    oauth,
    organisations,
    problems,
    reports,
    signing_keys,
    subscriptions,
    updates,
    webhooks,
)
from app.api.bodies import BodyRules
from app.api.metrics import make_metrics
from app.audit.signer import LogSigner, load_log_signer
from app.console import site as console
from app.disclosure.policy_files import load_policy
from app.keys.jose import load_jwks, load_keyring
from app.keys.sealing import DataKeys, load_data_keys
from app.messages.signed import Signing
from app.notices import examples
from app.notices.document import ReleaseNotice
from app.settings import Settings
from app.storage.db import make_engine, make_sessionmaker
from app.updates.document import DOCUMENTS
from app.worker.loop import http_client, run_forever

# Every router the app serves, in order; tests walk them to check each route's access rule.
ROUTER_MODULES = (
    health,
    oauth,
    organisations,
    notices,
    consents,
    subscriptions,
    messages,
    acknowledgements,
    updates,
    audit,
    reports,
    signing_keys,
    encryption_key,
)


def _operation_id(route: APIRoute) -> str:
    return f"{route.tags[0]}-{route.name}"


def make_signing(settings: Settings, data_keys: DataKeys) -> Signing:
    """What signs messages, read once: the signing keys, the policy (a bad one stops start-up),
    the issuer and the deadlines' windows. For the app, and for a worker on its own."""
    grace = timedelta(days=settings.signing_key_grace_days)
    keyring = load_keyring(settings.keys_dir, grace=grace)
    policy = load_policy(settings.policy_dir, ReleaseNotice, DOCUMENTS)
    return Signing(policy, keyring, data_keys, settings.issuer, windows=settings.windows)


def create_app(settings: Settings | None = None, *, embedded_worker: bool | None = None) -> FastAPI:
    """Build the app. Keys and policies are read here, once; a bad policy stops start-up."""
    settings = settings or Settings()
    data_keys = load_data_keys(settings.sealing_keys_dir)
    signing = make_signing(settings, data_keys)
    keyring, policy = signing.keyring, signing.policy
    log_signer = load_log_signer(settings)
    run_worker = settings.embedded_worker if embedded_worker is None else embedded_worker
    app = FastAPI(
        title="NPS exchange",
        version="1",
        summary="Release notices about NPS use: minimised, signed, delivered, audited.",
        lifespan=_lifespan(settings, signing=signing, log_signer=log_signer, worker=run_worker),
        generate_unique_id_function=_operation_id,
        docs_url=None,  # served by docs.install, from the exchange's own files
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.keyring = keyring
    app.state.policy = policy
    app.state.data_keys = data_keys
    app.state.log_signer = log_signer
    app.state.signing = signing
    app.state.trusted_issuer = _trusted_issuer(settings)
    app.state.metrics = make_metrics()
    app.state.throttle = FailureThrottle(
        limit=settings.client_auth_failure_limit,
        window_seconds=settings.client_auth_failure_window_seconds,
    )
    _serve(app)
    if settings.console_enabled:  # the console, served only once an OpenID issuer is set
        console.install(app, settings)
    return app


def _trusted_issuer(settings: Settings) -> TrustedIssuer | None:
    """The outside issuer whose tokens the exchange accepts, if one is configured."""
    if not (settings.trusted_issuer and settings.trusted_issuer_jwks):
        return None
    return TrustedIssuer(
        settings.trusted_issuer,
        load_jwks(settings.trusted_issuer_jwks),
        settings.trusted_issuer_organisation_claim,
    )


def _lifespan(
    settings: Settings, *, signing: Signing, log_signer: LogSigner, worker: bool
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """The database engine, the webhook client and, if embedded, the delivery worker, for as
    long as the app serves."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url, **settings.database_timeouts())
        app.state.engine = engine
        app.state.sessions = make_sessionmaker(engine)
        stop = asyncio.Event()
        running = None
        async with (
            http_client(settings.webhook_timeout_seconds) as client,
            httpx.AsyncClient() as console_http,  # the console's OpenID provider, if any
        ):
            app.state.console_http = console_http
            if worker:
                running = asyncio.create_task(
                    run_forever(
                        app.state.sessions,
                        client,
                        settings,
                        data_keys=signing.data_keys,
                        signing=signing,
                        stop=stop,
                        log_signer=log_signer,
                    )
                )
            try:
                yield
            finally:
                stop.set()
                if running is not None:
                    await running
                await engine.dispose()

    return lifespan


def _serve(app: FastAPI) -> None:
    """The middleware, the routes, the webhooks documented, /docs, and the OpenAPI document."""
    app.add_middleware(BodyRules)  # inside the containment that problems.install adds
    problems.install(app)
    for module in ROUTER_MODULES:
        app.include_router(module.router)
    # What the exchange sends to subscribers: documented (the OpenAPI `webhooks`), never served.
    app.webhooks.include_router(webhooks.router, generate_unique_id_function=_operation_id)
    docs.install(app)
    generate = app.openapi
    app.openapi = lambda: examples.with_examples(  # type: ignore[method-assign]
        problems.with_problem_schema(generate())
    )
