"""The `exchange` command. Results go to stdout as JSON; everything else goes to stderr."""

from __future__ import annotations

import asyncio
import gc
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.access import encryption_keys
from app.access import organisations as admin
from app.cli import diagnostics as logs
from app.cli.audit import audit_cli
from app.cli.report import report_cli
from app.keys.sealing import load_data_keys, new_data_key
from app.keys.signing_keys import KeyFileError, current_kid, new_signing_key
from app.notices import examples
from app.settings import Settings
from app.storage.db import make_engine, make_sessionmaker

T = TypeVar("T")
cli = typer.Typer(no_args_is_help=True, add_completion=False, help="The NPS exchange.")
db_cli = typer.Typer(no_args_is_help=True, help="The database.")
org_cli = typer.Typer(no_args_is_help=True, help="Organisations.")
client_cli = typer.Typer(no_args_is_help=True, help="API clients of an organisation.")
keys_cli = typer.Typer(no_args_is_help=True, help="The exchange's signing and data keys.")
cli.add_typer(db_cli, name="db")
cli.add_typer(org_cli, name="org")
cli.add_typer(client_cli, name="client")
retention_cli = typer.Typer(no_args_is_help=True, help="Retention of personal data.")
notice_cli = typer.Typer(no_args_is_help=True, help="Release notices.")
policy_cli = typer.Typer(no_args_is_help=True, help="The disclosure policy in consent/.")
cli.add_typer(keys_cli, name="keys")
cli.add_typer(retention_cli, name="retention")
cli.add_typer(notice_cli, name="notice")
cli.add_typer(policy_cli, name="policy")
cli.add_typer(audit_cli, name="audit")
cli.add_typer(report_cli, name="report")


def _print(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def _in_transaction(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run one use case in one committed transaction, as a request would."""

    async def run() -> T:
        settings = Settings()
        engine = make_engine(settings.database_url, **settings.database_timeouts(statements=False))
        try:
            async with make_sessionmaker(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except admin.AdminError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations (alembic upgrade head)."""
    from app.storage import migrate  # alembic takes a fifth of a second to import: only here

    logs.configure()
    settings = Settings()
    migrate.upgrade(settings.database_url, data_keys_dir=settings.sealing_keys_dir)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="API processes sharing the port: one per core.")
    ] = 1,
) -> None:
    """Serve the API, with the delivery worker embedded unless EXCHANGE_EMBEDDED_WORKER=false.

    With --workers N, uvicorn runs N processes, each building the app from the same settings
    (and each with its own embedded worker, which is safe: workers claim under a lease)."""
    import uvicorn

    try:
        app = serving_app()  # with N workers: only to fail here, once, on a bad key
    except KeyFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    options: dict[str, Any] = {"host": host, "port": port, "access_log": False, "log_config": None}
    if workers == 1:
        uvicorn.run(app, **options)
    else:
        uvicorn.run("app.cli.main:serving_app", factory=True, workers=workers, **options)


def serving_app() -> Any:
    """The app as each of `serve --workers N`'s processes builds it, logging configured."""
    from app.main import create_app

    logs.configure()
    return create_app(Settings())


@cli.command()
def worker() -> None:
    """Run a delivery worker on its own; many may run at once. Stops cleanly on SIGTERM."""
    from app.main import make_signing
    from app.worker.loop import http_client, run_forever

    logs.configure()
    settings = Settings()
    data_keys = load_data_keys(settings.sealing_keys_dir)
    signing = make_signing(settings, data_keys)  # it signs the deadlines' alerts

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        engine = make_engine(settings.database_url, **settings.database_timeouts())
        try:
            async with http_client(settings.webhook_timeout_seconds) as client:
                await run_forever(
                    make_sessionmaker(engine),
                    client,
                    settings,
                    data_keys=data_keys,
                    signing=signing,
                    stop=stop,
                )
        finally:
            await engine.dispose()

    # What is loaded by now lives as long as the process: frozen, the collector never scans it
    # again; and a larger young generation is collected less often (bench/README.md, "Why the
    # code is shaped so", has the figures).
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    asyncio.run(run())


@org_cli.command("add")
def org_add(
    kind: Annotated[
        str,
        typer.Option(
            help="prison, probation_provider, substance_misuse_service, auditor or operator."
        ),
    ],
    code: Annotated[str, typer.Option(help="The organisation's code, e.g. MDI or N07.")],
    name: Annotated[str, typer.Option(help="Its name.")],
) -> None:
    """Register an organisation; prints it as JSON."""
    now = datetime.now(UTC)
    organisation = _in_transaction(
        lambda s: admin.add_organisation(s, kind=kind, code=code, name=name, now=now)
    )
    _print(
        {
            "id": str(organisation.id),
            "code": organisation.code,
            "kind": organisation.kind,
            "name": organisation.name,
            "created_at": _time(organisation.created_at),
        }
    )


@client_cli.command("add")
def client_add(
    org: Annotated[str, typer.Option(help="The organisation's code.")],
    scopes: Annotated[
        str | None, typer.Option(help="Space-separated scopes; default: all its kind allows.")
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            readable=True,
            help="A PEM or JWK file: the client signs assertions (private_key_jwt).",
        ),
    ] = None,
) -> None:
    """Make an API client; prints client_id, client_secret (shown once; null with a public
    key) and scopes as JSON."""
    now = datetime.now(UTC)
    try:
        key = public_key.read_text() if public_key else None
    except UnicodeDecodeError:
        typer.echo("error: the key file must be PEM or JWK text", err=True)
        raise typer.Exit(2) from None
    client, secret = _in_transaction(
        lambda s: admin.add_client(s, organisation_code=org, scopes=scopes, public_key=key, now=now)
    )
    _print({"client_id": client.client_id, "client_secret": secret, "scopes": client.scopes})


@client_cli.command("rotate-secret")
def client_rotate_secret(
    org: Annotated[str, typer.Option(help="The organisation's code.")],
    client_id: Annotated[str, typer.Argument(help="The client to give a new secret.")],
    overlap_hours: Annotated[
        float, typer.Option(min=0, max=720, help="How long the old secret keeps working.")
    ] = 24,
) -> None:
    """A new secret (printed once); the old one works for --overlap-hours more."""
    now = datetime.now(UTC)
    client, secret = _in_transaction(
        lambda s: admin.rotate_secret(
            s, org, client_id, overlap=timedelta(hours=overlap_hours), now=now
        )
    )
    valid_until = client.previous_secret_expires_at
    _print(
        {
            "client_id": client.client_id,
            "client_secret": secret,
            "previous_secret_valid_until": _time(valid_until) if valid_until else None,
        }
    )


@client_cli.command("disable")
def client_disable(
    org: Annotated[str, typer.Option(help="The organisation's code.")],
    client_id: Annotated[str, typer.Argument(help="The client to disable.")],
) -> None:
    """Disable a client: its tokens stop working at once."""
    now = datetime.now(UTC)
    client = _in_transaction(lambda s: admin.disable_client(s, org, client_id, now=now))
    _print({"client_id": client.client_id, "disabled_at": _time(client.disabled_at)})


@org_cli.command("disable")
def org_disable(code: Annotated[str, typer.Argument(help="The organisation's code.")]) -> None:
    """Disable an organisation: every token of its clients stops working at once."""
    now = datetime.now(UTC)
    organisation = _in_transaction(lambda s: admin.disable_organisation(s, code, now=now))
    _print({"code": organisation.code, "disabled_at": _time(organisation.disabled_at)})


@org_cli.command("encryption-key")
def org_encryption_key(
    org: Annotated[str, typer.Option(help="The recipient organisation's code.")],
    key: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            readable=True,
            help="Its RSA public key (PEM or JWK file, 2048 bits or more).",
        ),
    ] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Remove its key instead.")] = False,
) -> None:
    """Set (--key FILE) or remove (--remove) a recipient's encryption key: messages made for it
    from then on are signed and then encrypted to it. Prints the kept public JWK, or null."""
    if (key is not None) == remove:
        typer.echo("error: give either --key FILE or --remove", err=True)
        raise typer.Exit(2)
    now = datetime.now(UTC)
    if remove:
        _in_transaction(lambda s: encryption_keys.remove_key(s, org, now=now))
        _print({"code": org, "encryption_jwk": None})
        return
    assert key is not None
    try:
        text = key.read_text()
    except UnicodeDecodeError:
        typer.echo("error: the key file must be PEM or JWK text", err=True)
        raise typer.Exit(2) from None
    public_jwk = _in_transaction(lambda s: encryption_keys.set_key(s, org, text, now=now))
    _print({"code": org, "encryption_jwk": public_jwk})


def _time(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


@keys_cli.command("rotate")
def keys_rotate() -> None:
    """Make a new current signing key. The one it replaces stays in the JWKS for
    EXCHANGE_SIGNING_KEY_GRACE_DAYS, and at /v1/signing-keys for good. Restart every API
    process to sign with the new key."""
    settings = Settings()
    now = datetime.now(UTC)
    retired = current_kid(settings.keys_dir)
    kid = new_signing_key(settings.keys_dir, now=now)
    until = now + timedelta(days=settings.signing_key_grace_days)
    _print(
        {
            "kid": kid,
            "retired": retired,
            "retired_published_until": _time(until) if retired else None,
        }
    )


@keys_cli.command("rotate-data")
def keys_rotate_data() -> None:
    """Make a new current data key (sealing personal data at rest); earlier keys still open what
    they sealed. Restart the API and workers to use it."""
    _print({"data_key_id": new_data_key(Settings().sealing_keys_dir)})


@retention_cli.command("purge")
def retention_purge() -> None:
    """Purge notice bodies and message payloads older than EXCHANGE_RETENTION_DAYS now; the log
    keeps its entries. The worker does the same on a schedule."""
    from app.worker.loop import purge_expired

    settings = Settings()

    async def run() -> None:
        engine = make_engine(settings.database_url, **settings.database_timeouts(statements=False))
        try:
            purged = await purge_expired(make_sessionmaker(engine), settings)
        finally:
            await engine.dispose()
        _print({"notices": purged.notices, "messages": purged.messages})

    asyncio.run(run())


@policy_cli.command("explain")
def policy_explain(
    notice: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="A release notice (JSON).")
    ],
    recipient: Annotated[str, typer.Option(help="probation_provider or substance_misuse_service.")],
) -> None:
    """What the policy in EXCHANGE_POLICY_DIR would send a recipient of this notice, never
    posted: each field sent (rule, transform, basis) and withheld (rule, reason)."""
    from pydantic import ValidationError

    from app.access.identity import RECIPIENT_KINDS
    from app.disclosure.explanations import explanation
    from app.disclosure.policy import PolicyError, consents_from_records, decide
    from app.disclosure.policy_files import load_policy
    from app.notices.document import ReleaseNotice
    from app.updates.document import DOCUMENTS
    from app.wire.schemas import RecipientDisclosure

    if recipient not in RECIPIENT_KINDS:
        typer.echo(f"error: --recipient must be one of {', '.join(RECIPIENT_KINDS)}", err=True)
        raise typer.Exit(2)
    try:
        policy = load_policy(Settings().policy_dir, ReleaseNotice, DOCUMENTS)
        parsed = ReleaseNotice.model_validate_json(notice.read_bytes())
    except PolicyError as exc:
        typer.echo(f"error: the policy: {exc}", err=True)
        raise typer.Exit(2) from None
    except ValidationError as exc:
        for error in exc.errors():
            where = "/" + "/".join(str(p) for p in error["loc"])
            typer.echo(f"error: {where}: {error['msg']}", err=True)
        raise typer.Exit(2) from None
    body = parsed.model_dump(mode="json", exclude_unset=True)
    standing = consents_from_records(body.get("consent", []), datetime.now(UTC))
    told = RecipientDisclosure.model_validate(
        explanation(policy, decide(policy, body, recipient, consents=standing))
    )
    # As GET /v1/release-notices/{id}/disclosures tells it, less what only a posted notice has.
    unposted = {"organisation_code", "decided_at", "message_id"}
    _print({"consents": standing, **told.model_dump(mode="json", exclude=unposted)})


@notice_cli.command("example")
def notice_example() -> None:
    """Print the example release notice, its dates moved so that it can be posted today."""
    _print(examples.release_notice(datetime.now(UTC).date()))


def main() -> None:
    cli()
