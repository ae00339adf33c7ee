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

from app.audit import entries as audit
from app.audit import export as log_export
from app.audit import tree as log_tree
from app.audit.checkpoint import CheckpointError, parse_and_verify, parse_verifier_key, signed_by
from app.audit.signer import LogSigner, key_path, load_log_signer
from app.audit.verify import Report, verify
from app.cli import diagnostics as logs
from app.keys.signing_keys import KeyFileError
from app.settings import Settings
from app.storage.db import make_engine, make_sessionmaker

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
                        progress=lambda done, total: progress.update(
                            task, completed=done, total=total
                        ),
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
    exchange runs, with its settings: it checks the key against the newest checkpoint stored,
    and refuses (exit code 2) when that checkpoint was signed under another name (origin) or by
    another key. It never makes a key: with none here it fails (exit code 2)."""
    settings = Settings()
    try:
        signer = load_log_signer(settings, create=False)
    except KeyFileError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    mismatch = _mismatch(signer, asyncio.run(_newest_note(settings)))
    if mismatch:
        typer.echo(f"error: {mismatch}", err=True)
        raise typer.Exit(2)
    document = {
        "verifier_key": signer.verifier_key,
        "key_id": signer.key_id,
        "origin": signer.origin,
    }
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


async def _newest_note(settings: Settings) -> str | None:
    engine = make_engine(settings.database_url, **settings.database_timeouts(statements=False))
    try:
        async with make_sessionmaker(engine)() as session:
            latest = await log_tree.latest_checkpoint(session)
            return latest.note if latest else None
    finally:
        await engine.dispose()


def _mismatch(signer: LogSigner, note: str | None) -> str | None:
    """Why the newest checkpoint does not verify with this key, if it does not (None: it does,
    or there is none yet)."""
    if note is None:
        return None
    public_key = signer.private_key.public_key()
    try:
        parse_and_verify(note, public_key, signer.origin, origin=signer.origin)
        return None
    except CheckpointError:
        pass
    try:
        signatures = signed_by(note)
    except CheckpointError as error:
        return f"the newest checkpoint cannot be read ({error}): run `exchange audit verify`"
    names = sorted({name for name, _ in signatures})
    if signer.origin not in names:
        stored = ", ".join(f"{name} (key ID {kid})" for name, kid in signatures)
        return (
            f"the log's newest checkpoint is signed as {stored}, but this key would be named "
            f"{signer.origin} (key ID {signer.key_id}), which does not verify it: run this with "
            f"the exchange's own settings (EXCHANGE_LOG_ORIGIN={names[0]}, or its "
            "EXCHANGE_ISSUER)"
        )
    ids = ", ".join(kid for name, kid in signatures if name == signer.origin)
    return (
        f"the log key here (key ID {signer.key_id}) did not sign the log's newest checkpoint "
        f"(key ID {ids}): run this where the exchange runs, with its EXCHANGE_DATA_DIR"
    )


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
