"""`exchange audit ...`: the auditor's commands."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from rich.progress import Progress

from app import audit, log_export, logs
from app.checkpoint import CheckpointError, parse_verifier_key
from app.db import make_engine, make_sessionmaker
from app.log_key import key_path, load_log_signer
from app.log_verify import Report, verify
from app.settings import Settings
from app.signing_keys import KeyFileError

audit_cli = typer.Typer(no_args_is_help=True, help="The exchange log.")


def _counted(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


@audit_cli.command("verify")
def audit_verify(
    verifier_key: Annotated[
        str | None,
        typer.Option(
            help="The log's verifier key (name+id+key), as the operator published it. Default: "
            "the one of this installation's own log key."
        ),
    ] = None,
) -> None:
    """Recompute the log's tree from the stored entries and check every checkpoint's signature
    and root. Each entry found altered, removed or out of place is named by its leaf index;
    the exit code is 1 if anything is wrong."""
    logs.configure()
    settings = Settings()
    if verifier_key:
        try:
            origin, public_key = parse_verifier_key(verifier_key)
        except CheckpointError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2) from None
    else:
        if not key_path(settings).exists():
            typer.echo("error: no log key here: give the log's --verifier-key", err=True)
            raise typer.Exit(2)
        signer = load_log_signer(settings)
        origin, public_key = signer.origin, signer.private_key.public_key()

    async def run() -> Report:
        engine = make_engine(settings.database_url, **settings.database_timeouts(statements=False))
        try:
            with Progress(transient=True) as progress:
                task = progress.add_task("verifying the log", total=None)
                async with make_sessionmaker(engine)() as session:
                    return await verify(
                        session,
                        public_key,
                        origin,
                        lambda done, total: progress.update(task, completed=done, total=total),
                    )
        finally:
            await engine.dispose()

    report = asyncio.run(run())
    for finding in report.findings:
        where = "" if finding.leaf_index is None else f"leaf {finding.leaf_index}: "
        typer.echo(where + finding.problem)
    verdict = "FAILED" if report.findings else "ok"
    leaves = _counted(report.leaves, "leaf", "leaves")
    checkpoints = _counted(report.checkpoints, "checkpoint", "checkpoints")
    typer.echo(f"{verdict}: {leaves}, {checkpoints} checked")
    if report.findings:
        raise typer.Exit(1)


@audit_cli.command("key")
def audit_key() -> None:
    """Print the log's verifier key (name+id+key, as `audit verify --verifier-key` and the
    README's code take it) and its key ID, for the operator to give auditors. Run it where the
    exchange runs; it never makes a key: with none here it fails (exit code 2)."""
    try:
        signer = load_log_signer(Settings(), create=False)
    except KeyFileError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    document = {
        "verifier_key": signer.verifier_key,
        "key_id": signer.key_id,
        "origin": signer.origin,
    }
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


@audit_cli.command("export")
def audit_export(
    path: Annotated[Path, typer.Argument(help="The NDJSON file to write ('-' for stdout).")],
) -> None:
    """Write the log up to its latest checkpoint as NDJSON, as GET /v1/audit/export does: the
    checkpoint (with the verifier key) first, then every leaf it covers with its entry."""
    logs.configure()
    settings = Settings()
    if not key_path(settings).exists():
        typer.echo("error: no log key here: run this where the exchange runs", err=True)
        raise typer.Exit(2)
    verifier_key = load_log_signer(settings).verifier_key

    async def run(out: BinaryIO) -> None:
        engine = make_engine(settings.database_url, **settings.database_timeouts(statements=False))
        try:
            sessions = make_sessionmaker(engine)
            async with sessions() as session:
                async for line in log_export.lines(session, verifier_key):
                    out.write(line)
            async with sessions() as session, session.begin():  # a consultation, as by the API
                audit.append(
                    session,
                    "audit.consulted",
                    at=datetime.now(UTC),
                    details={"query": "export", "via": "command line"},
                )
        finally:
            await engine.dispose()

    if str(path) == "-":
        asyncio.run(run(sys.stdout.buffer))
        return
    with path.open("wb") as out:
        asyncio.run(run(out))
