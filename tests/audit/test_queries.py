"""An auditor asks the log about a person by NOMS number while the log names nobody, and every
question an auditor asks is itself in the log (issue 7, items 1, 6 and 7)."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.audit import tree as log_tree
from app.storage import migrate
from tests.helpers.problems import assert_problem

OTHER_NOMS = "B7654DE"


async def entries(world, **params: Any) -> Any:
    return await world.api.get(
        "/v1/audit/entries", params={"limit": 200, **params}, headers=await world.headers("AUDIT")
    )


async def posted(world, body: dict[str, Any]) -> str:
    response = await world.post_notice(body)
    assert response.status_code == 202, response.text
    return response.json()["id"]


async def test_entries_about_a_person_are_found_by_noms_number_and_no_others(world, example):
    other = copy.deepcopy(example)
    other["person"]["noms_number"] = OTHER_NOMS
    mine, theirs = await posted(world, example), await posted(world, other)

    response = await entries(world, noms_number=example["person"]["noms_number"])
    assert response.status_code == 200, response.text
    found = response.json()["items"]
    notices = {e["notice_id"] for e in found if e["action"] != "audit.consulted"}
    assert notices == {mine}  # every entry of my notice's, none of theirs
    assert {"notice.received", "disclosure.decided", "consent.recorded"} <= {
        e["action"] for e in found
    }
    everything = (await entries(world)).json()["items"]
    about_mine = [e["id"] for e in everything if e["notice_id"] == mine]
    assert set(about_mine) <= {e["id"] for e in found}
    assert theirs not in {e["notice_id"] for e in found}


async def test_the_log_names_nobody_not_even_in_an_auditors_query(world, example):
    await posted(world, example)
    noms = example["person"]["noms_number"]
    assert (await entries(world, noms_number=noms)).status_code == 200
    stored = await world.sql("SELECT action, person_ref, details FROM audit_entry")
    assert noms not in repr(stored)
    refs = {ref for action, ref, _ in stored if action == "notice.received"}
    [consulted] = [row for row in stored if row[0] == "audit.consulted"]
    assert consulted[1] in refs  # the query is logged with the person's keyed hash


async def test_every_auditor_query_is_logged_as_a_consultation(world, example):
    notice_id = await posted(world, example)
    await entries(world, action="notice.received")
    answer = await world.api.get(
        f"/v1/audit/notices/{notice_id}/disclosures", headers=await world.headers("AUDIT")
    )
    assert answer.status_code == 200, answer.text
    found = (await entries(world, action="audit.consulted")).json()["items"]
    # (the query that reads them is logged in its own transaction, after its read)
    assert [e["details"]["query"] for e in found] == ["entries", "notice_disclosures"]
    assert found[0]["details"]["action"] == "notice.received"
    assert found[1]["notice_id"] == notice_id
    assert {e["actor_organisation_id"] for e in found} == {str(world.ids["AUDIT"])}


async def test_a_malformed_noms_number_is_a_problem_and_is_not_logged(world):
    await world.headers("AUDIT")
    before = await world.counts()
    body = assert_problem(await entries(world, noms_number="not-a-number"), 422)
    assert [e["pointer"] for e in body["errors"]] == ["/noms_number"]
    assert await world.counts() == before


async def test_a_proof_query_is_logged_as_a_consultation_of_the_entry_it_proves(world, example):
    notice_id = await posted(world, example)
    async with world.sessions() as session, session.begin():
        size = await log_tree.sequence(session, datetime.now(UTC))
    notice_leaf = next(
        i
        for i, row in enumerate(
            await world.sql(
                "SELECT e.notice_id FROM audit_leaf l JOIN"
                " audit_entry e ON e.id = l.entry_id"
                " ORDER BY l.leaf_index"
            )
        )
        if row[0] is not None
    )
    proof = await world.api.get(
        "/v1/audit/proofs/inclusion",
        params={"leaf_index": notice_leaf, "tree_size": size},
        headers=await world.headers("AUDIT"),
    )
    assert proof.status_code == 200, proof.text
    consistency = await world.api.get(
        "/v1/audit/proofs/consistency",
        params={"first": 1, "second": size},
        headers=await world.headers("AUDIT"),
    )
    assert consistency.status_code == 200, consistency.text
    found = (await entries(world, action="audit.consulted")).json()["items"]
    assert [e["details"]["query"] for e in found] == ["inclusion_proof", "consistency_proof"]
    assert found[0]["notice_id"] == notice_id
    assert found[0]["details"]["leaf_index"] == notice_leaf


async def test_every_entry_about_a_notice_names_its_person_by_the_same_hash(world, example):
    notice_id = await posted(world, example)
    [(ref,)] = await world.sql("SELECT person_ref FROM release_notice")
    rows = await world.sql("SELECT action, person_ref FROM audit_entry WHERE notice_id IS NOT NULL")
    actions = {action for action, _ in rows}
    assert {"notice.received", "disclosure.decided", "message.signed"} <= actions
    assert all(person == ref for _, person in rows), rows
    assert notice_id


async def test_0007_gives_entries_written_before_it_their_notices_person(
    world, example, database_url, settings
):
    await posted(world, example)
    keys = settings.sealing_keys_dir  # 0009 reads the stored notices: the keys that sealed them
    config = migrate.config(database_url, data_keys_dir=keys)
    try:
        await asyncio.to_thread(command.downgrade, config, "0006")  # person_ref goes
        await asyncio.to_thread(migrate.upgrade, database_url, data_keys_dir=keys)  # back, filled
        [(ref,)] = await world.sql("SELECT person_ref FROM release_notice")
        rows = await world.sql("SELECT person_ref FROM audit_entry WHERE notice_id IS NOT NULL")
        assert rows and {person for (person,) in rows} == {ref}
        found = await entries(world, noms_number=example["person"]["noms_number"])
        assert len([e for e in found.json()["items"] if e["notice_id"]]) == len(rows)
        # ... and the log refuses change again, as before.
        with pytest.raises(DBAPIError, match="append-only"):
            async with world.sessions() as session, session.begin():
                await session.execute(text("UPDATE audit_entry SET person_ref = NULL"))
    finally:
        await asyncio.to_thread(migrate.upgrade, database_url, data_keys_dir=keys)
