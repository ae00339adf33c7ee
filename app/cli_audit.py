"""`exchange audit ...`: the auditor's commands."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.progress import Progress

from app import logs
from app.checkpoint import CheckpointError, parse_verifier_key
from app.db import make_engine, make_sessionmaker
from app.log_key import KEY_FILE, load_log_signer
from app.log_verify import Report, verify
from app.settings import Settings

audit_cli = typer.Typer(no_args_is_help=True, help="The exchange log.")


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
        if not (settings.data_dir / "log-key" / KEY_FILE).exists():
            typer.echo("error: no log key here: give the log's --verifier-key", err=True)
            raise typer.Exit(2)
        signer = load_log_signer(settings)
        origin, public_key = signer.origin, signer.private_key.public_key()

    async def run() -> Report:
        engine = make_engine(settings.database_url)
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
        typer.echo(f"leaf {finding.leaf_index}: {finding.problem}")
    verdict = "FAILED" if report.findings else "ok"
    typer.echo(f"{verdict}: {report.leaves} leaves, {report.checkpoints} checkpoints checked")
    if report.findings:
        raise typer.Exit(1)
