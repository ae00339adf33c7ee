"""A notice's text and members as another parser could read them: a name holds no control
character, free text none but tab and line breaks, neither holds NUL (which PostgreSQL cannot
store and SQLite would), and no member is given twice. Each is a 422 naming it, storing nothing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.helpers.notices import JSON, Maker, at, changed, edits, raw_body
from tests.helpers.problems import assert_problem


def twice(pointer: str, first: Any) -> Maker:
    """The notice as raw JSON in which the member at `pointer` is given twice: first `first`,
    then its own value (Python's json keeps the last; another parser may keep the first)."""
    mark = "__given_twice__"

    def make(example: dict[str, Any]) -> dict[str, Any]:
        *_, name = pointer.strip("/").split("/")
        own = value_at(example, pointer)
        text = json.dumps(changed(example, pointer, mark))
        both = f"{json.dumps(name)}: {json.dumps(first)}, {json.dumps(name)}: {json.dumps(own)}"
        text = text.replace(f"{json.dumps(name)}: {json.dumps(mark)}", both)
        return {"content": text.encode(), "headers": {"content-type": JSON}}

    return make


def value_at(document: Any, pointer: str) -> Any:
    for part in pointer.strip("/").split("/"):
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document


# (case, request maker, the pointers the 422 must name: exactly these)
REFUSED = [
    # Text: a name holds no control character, free text none but tab and line breaks, and
    # neither holds NUL, which PostgreSQL cannot store (SQLite would, and answer otherwise).
    *[
        (f"{pointer} holding {text!r}", at(pointer, text), {pointer})
        for pointer, text in [
            ("/person/given_name", "Dan\x00iel"),
            ("/person/family_name", "Hughes\n"),
            ("/person/family_name", "Hu\tghes"),
            ("/consent/0/recorded_by", "Healthcare\x00"),
            ("/nps_use/substances/0/local_name", "\x1b[31mSpice"),
            ("/release_plan/responsible_officer/name", "Sam\x85Patel"),
            ("/release_plan/responsible_officer/email", "sam\x00@probation.example"),
            ("/nps_use/treatment_in_custody/clinical_notes", "sleep\x00disturbance"),
            ("/safeguarding/concerns", "ring the bell\x07"),
            ("/other_substance_use/notes", "\x7f"),
        ]
    ],
    # A member given twice, at any depth: Python keeps the last, another parser the first.
    ("noms_number twice", twice("/person/noms_number", "B9876ZZ"), {"/person/noms_number"}),
    ("safeguarding twice", twice("/safeguarding", {}), {"/safeguarding"}),
    ("a consent's decision twice", twice("/consent/1/decision", "given"), {"/consent/1/decision"}),
    (
        "a member twice, once spelt with an escape",
        raw_body(b'{"person": {}, "\\u0070erson": {}}'),
        {"/person"},
    ),
]

# Accepted: what free text and names may hold.
ACCEPTED = [
    (
        "free text on several lines, with tabs",
        at("/nps_use/treatment_in_custody/clinical_notes", "Reduction:\n\tcompleted.\r\nSleep."),
    ),
    (
        "names beyond ASCII",
        edits(("/person/given_name", "Siân"), ("/person/family_name", "Ó Briain")),
    ),
]


@pytest.mark.parametrize(
    ("make", "pointers"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
async def test_control_characters_and_members_given_twice_are_refused(
    world, api, example, make, pointers
):
    headers = await world.headers("MDI")
    before = await world.counts()
    request = make(example)
    request["headers"] = {**headers, **request.get("headers", {})}
    response = await api.post("/v1/release-notices", **request)
    body = assert_problem(response, 422)
    assert {e["pointer"] for e in body["errors"]} == pointers
    assert await world.counts() == before


@pytest.mark.parametrize("make", [c[1] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
async def test_free_text_keeps_its_lines_and_names_their_letters(world, api, example, make):
    request = make(example)
    request["headers"] = await world.headers("MDI")
    response = await api.post("/v1/release-notices", **request)
    assert response.status_code == 202, response.text
