"""`exchange audit key` gives the operator the verifier key to publish; `audit verify` counts
in words a person reads.

The key printed must verify what the exchange actually signs: a checkpoint made by the running
app, checked with app/checkpoint, with the README's own code and with `audit verify`.
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime
from typing import Any

from app.audit import entries as audit
from app.audit.checkpoint import parse_and_verify, parse_verifier_key
from app.audit.signer import key_path, load_log_signer
from app.worker.loop import advance_log
from tests.helpers.readme import python_blocks


def readme_verifier() -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(compile(python_blocks()[0], "README.md", "exec"), namespace)  # noqa: S102 - our README
    return namespace


async def test_the_printed_key_verifies_a_checkpoint_the_exchange_signed(
    app, world, example, settings, run, monkeypatch
):
    monkeypatch.setenv("EXCHANGE_DATA_DIR", str(settings.data_dir))  # the app's installation
    monkeypatch.setenv("EXCHANGE_ISSUER", settings.issuer)
    assert (await world.post_notice(example)).status_code == 202
    every_entry = settings.model_copy(update={"checkpoint_every_entries": 1})
    await advance_log(world.sessions, every_entry, app.state.log_signer, now=datetime.now(UTC))
    served = await world.api.get("/v1/audit/checkpoint", headers=await world.headers("AUDIT"))
    assert served.status_code == 200, served.text
    note = served.json()["note"]

    printed = await asyncio.to_thread(run, "audit", "key")
    assert printed.exit_code == 0, printed.stderr
    key = json.loads(printed.stdout)
    assert set(key) == {"verifier_key", "key_id", "origin"}
    name, key_id, _ = key["verifier_key"].split("+", 2)
    assert (name, key_id) == (key["origin"], key["key_id"]) == ("exchange.test/log", key_id)
    signature = base64.b64decode(note.rstrip("\n").rsplit(" ", 1)[1])
    assert signature[:4].hex() == key["key_id"]  # the ID the note's signature line carries

    origin, public_key = parse_verifier_key(key["verifier_key"])
    checkpoint = parse_and_verify(note, public_key, origin, origin=origin)
    size, root = readme_verifier()["verify_checkpoint"](note, key["verifier_key"])
    assert (size, root) == (checkpoint.size, checkpoint.root)
    assert size == served.json()["tree_size"]
    verified = await asyncio.to_thread(
        run, "audit", "verify", "--verifier-key", key["verifier_key"]
    )
    assert verified.exit_code == 0, verified.output
    assert "ok:" in verified.output


def test_without_a_log_key_it_fails_and_makes_none(run, tmp_path) -> None:
    result = run("audit", "key")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "no log key here" in result.stderr
    assert not (tmp_path / "var" / "log-key").exists()


async def test_one_checkpoint_is_counted_as_one(sessions, settings, run, monkeypatch) -> None:
    await checkpointed(sessions, settings)
    monkeypatch.setenv("EXCHANGE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("EXCHANGE_ISSUER", settings.issuer)
    assert key_path(settings).exists()

    result = await asyncio.to_thread(run, "audit", "verify")
    assert result.exit_code == 0, result.output
    assert "ok: 1 leaf, 1 checkpoint checked" in result.output


async def checkpointed(sessions, settings) -> None:
    """One entry, and a checkpoint of it signed by the installation's log key."""
    async with sessions() as session, session.begin():
        audit.append(session, "audit.consulted", at=datetime.now(UTC), details={"query": "x"})
    every_entry = settings.model_copy(update={"checkpoint_every_entries": 1})
    signer = load_log_signer(settings)
    assert await advance_log(sessions, every_entry, signer, now=datetime.now(UTC)) == (1, True)


async def test_without_the_exchanges_settings_it_refuses_a_key_of_another_name(
    sessions, settings, run, monkeypatch
) -> None:
    """Run from a shell without EXCHANGE_ISSUER, the key would be named after the default
    issuer's host: a key ID that verifies none of the checkpoints, printed as if it did."""
    await checkpointed(sessions, settings)
    monkeypatch.setenv("EXCHANGE_DATA_DIR", str(settings.data_dir))
    monkeypatch.delenv("EXCHANGE_ISSUER", raising=False)
    monkeypatch.delenv("EXCHANGE_LOG_ORIGIN", raising=False)

    refused = await asyncio.to_thread(run, "audit", "key")
    assert refused.exit_code == 2
    assert refused.stdout == ""
    assert "signed as exchange.test/log (key ID " in refused.stderr
    assert "EXCHANGE_LOG_ORIGIN=exchange.test/log" in refused.stderr

    monkeypatch.setenv("EXCHANGE_LOG_ORIGIN", "exchange.test/log")  # as the README says
    printed = await asyncio.to_thread(run, "audit", "key")
    assert printed.exit_code == 0, printed.stderr
    assert json.loads(printed.stdout)["verifier_key"] == load_log_signer(settings).verifier_key


async def test_a_log_key_that_did_not_sign_the_checkpoints_is_refused(
    sessions, settings, run, monkeypatch, tmp_path
) -> None:
    await checkpointed(sessions, settings)
    elsewhere = settings.model_copy(update={"data_dir": tmp_path / "elsewhere"})
    other = load_log_signer(elsewhere)  # another installation's key, under the same name
    monkeypatch.setenv("EXCHANGE_DATA_DIR", str(elsewhere.data_dir))
    monkeypatch.setenv("EXCHANGE_ISSUER", settings.issuer)

    refused = await asyncio.to_thread(run, "audit", "key")
    assert refused.exit_code == 2
    assert refused.stdout == ""
    assert f"the log key here (key ID {other.key_id}) did not sign" in refused.stderr
    assert load_log_signer(settings).key_id in refused.stderr


async def test_before_any_checkpoint_the_key_is_printed(settings, run, monkeypatch) -> None:
    signer = load_log_signer(settings)
    monkeypatch.setenv("EXCHANGE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("EXCHANGE_ISSUER", settings.issuer)
    printed = await asyncio.to_thread(run, "audit", "key")
    assert printed.exit_code == 0, printed.stderr
    assert json.loads(printed.stdout)["key_id"] == signer.key_id
