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

from app import audit
from app.checkpoint import parse_and_verify, parse_verifier_key
from app.log_key import key_path, load_log_signer
from app.worker import advance_log
from tests.test_readme_auditors import python_blocks


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
    checkpoint = parse_and_verify(note, public_key, origin, origin)
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
    async with sessions() as session, session.begin():
        audit.append(session, "audit.consulted", at=datetime.now(UTC), details={"query": "x"})
    every_entry = settings.model_copy(update={"checkpoint_every_entries": 1})
    signer = load_log_signer(settings)
    assert await advance_log(sessions, every_entry, signer, now=datetime.now(UTC)) == (1, True)
    monkeypatch.setenv("EXCHANGE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("EXCHANGE_ISSUER", settings.issuer)
    assert key_path(settings).exists()

    result = await asyncio.to_thread(run, "audit", "verify")
    assert result.exit_code == 0, result.output
    assert "ok: 1 leaf, 1 checkpoint checked" in result.output
