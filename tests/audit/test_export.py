"""The log exported as NDJSON, by the API and by `exchange audit export`: it checks itself
(issue 7 item 6)."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from app.audit import merkle
from app.audit.checkpoint import parse_and_verify, parse_verifier_key
from app.wire.canonical import canonical_json


def parsed(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in body.decode().splitlines()]


def check(lines: list[dict[str, Any]]) -> int:
    """What an auditor does with an export: verify the note, rebuild the root from the entries."""
    head = lines[0]["checkpoint"]
    origin, key = parse_verifier_key(head["verifier_key"])
    signed = parse_and_verify(head["note"], key, origin, origin=origin)
    leaves = lines[1:]
    assert [leaf["leaf_index"] for leaf in leaves] == list(range(signed.size))
    hashes = [merkle.leaf_hash(canonical_json(leaf["entry"])) for leaf in leaves]
    assert hashes == [base64.b64decode(leaf["leaf_hash"]) for leaf in leaves]
    assert merkle.root_hash(hashes) == signed.root == base64.b64decode(head["root_hash"])
    return signed.size


async def export(world) -> Any:
    return await world.api.get("/v1/audit/export", headers=await world.headers("AUDIT"))


async def test_the_export_checks_itself_and_is_logged(world, log):
    response = await export(world)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert check(parsed(response.content)) > 0
    consulted = await world.sql("SELECT details FROM audit_entry WHERE action = 'audit.consulted'")
    assert len(consulted) == 1 and "export" in str(consulted[0])


async def test_the_command_writes_what_the_api_serves(
    world, log, run, settings, tmp_path, monkeypatch
):
    # The same installation as the API's: its log key, and its issuer (the log's origin).
    monkeypatch.setenv("EXCHANGE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("EXCHANGE_ISSUER", settings.issuer)
    path = tmp_path / "log.ndjson"
    result = await asyncio.to_thread(run, "audit", "export", str(path))
    assert result.exit_code == 0, result.output
    from_file = parsed(path.read_bytes())
    assert check(from_file) > 0
    assert from_file == parsed((await export(world)).content)


async def test_before_any_checkpoint_the_export_is_only_its_head(world):
    response = await export(world)
    assert response.status_code == 200
    [line] = parsed(response.content)
    assert line["checkpoint"]["tree_size"] == 0 and line["checkpoint"]["note"] is None


async def test_exporting_needs_the_audit_scope(world):
    response = await world.api.get("/v1/audit/export", headers=await world.headers("N07"))
    assert response.status_code == 403
