"""The committed contract matches the code, and the canonical example satisfies it."""

from __future__ import annotations

import copy
import json
import shutil
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import jsonschema
import pytest

from app import contract
from app.notices import examples
from app.notices.document import ReleaseNotice, implausible
from app.wire.base import PATTERN_WORDS

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schemas" / "release-notice.v1.json").read_text())
EXAMPLE = json.loads((ROOT / "schemas" / "examples" / "release-notice.json").read_text())


def test_committed_openapi_and_schemas_match_the_code() -> None:
    stale = [str(p.relative_to(ROOT)) for p in contract.drift(ROOT)]
    assert stale == [], f"run `make contract`: {stale}"


def test_drift_is_detected(tmp_path: Path) -> None:
    for path, text in contract.generated(ROOT).items():
        target = tmp_path / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    shutil.copytree(ROOT / "schemas" / "examples", tmp_path / "schemas" / "examples")
    assert contract.drift(tmp_path) == []
    (tmp_path / "openapi" / "openapi.json").write_text("{}\n")
    assert contract.drift(tmp_path) == [tmp_path / "openapi" / "openapi.json"]


def test_example_validates_against_the_published_schema_and_the_model() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(EXAMPLE, SCHEMA, cls=jsonschema.Draft202012Validator)
    ReleaseNotice.model_validate(EXAMPLE)
    assert SCHEMA["examples"] == [EXAMPLE]


def _without(pointer: str) -> dict:
    notice = copy.deepcopy(EXAMPLE)
    *parents, last = pointer.strip("/").split("/")
    target = notice
    for part in parents:
        target = target[part]
    del target[last]
    return notice


@pytest.mark.parametrize(
    "pointer",
    ["/safeguarding/children_contact", "/safeguarding/vulnerable_adults_contact", "/person"],
)
def test_published_schema_requires_what_the_model_requires(pointer: str) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(_without(pointer), SCHEMA, cls=jsonschema.Draft202012Validator)


def test_published_schema_refuses_unknown_members() -> None:
    notice = copy.deepcopy(EXAMPLE)
    notice["nps_use"]["colour"] = "green"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(notice, SCHEMA, cls=jsonschema.Draft202012Validator)


def test_every_operation_has_a_stable_tag_name_id() -> None:
    document = json.loads((ROOT / "openapi" / "openapi.json").read_text())
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert all(op_id.split("-")[0] for op_id in ids)
    assert "release-notices-create" in ids


def test_every_error_answer_is_documented_as_a_problem() -> None:
    document = json.loads((ROOT / "openapi" / "openapi.json").read_text())
    errors = [
        (path, method, status, list(answer.get("content", {})))
        for path, item in document["paths"].items()
        for method, operation in item.items()
        for status, answer in operation["responses"].items()
        if status[0] in "45"
    ]
    assert errors, "no error answers documented at all"
    assert [e for e in errors if e[3] != ["application/problem+json"]] == []
    assert "Problem" in document["components"]["schemas"]
    assert "HTTPValidationError" not in document["components"]["schemas"]


def _leaves(schema: dict, node: dict, path: str = "") -> list[tuple[str, dict]]:
    """Every leaf property of the schema (one that is not itself an object), with its path."""
    if "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
    for option in node.get("anyOf", []):
        if option.get("type") != "null":
            return _leaves(schema, option, path)
    if node.get("type") == "array" and "$ref" in node.get("items", {}):
        return _leaves(schema, node["items"], path + "/0")
    if "properties" not in node:
        return [(path, node)]
    found = []
    for name, member in node["properties"].items():
        inner = _leaves(schema, member, f"{path}/{name}")
        # A leaf described where it is used (the property) counts as described.
        found += [
            (p, {**n, "description": member.get("description") or n.get("description")})
            for p, n in inner
        ]
    return found


def test_every_field_of_the_notice_is_described_for_those_who_fill_it_in() -> None:
    undescribed = [
        path
        for path, node in _leaves(SCHEMA, SCHEMA)
        if not node.get("description") and not path.startswith("/wider_needs/")
    ]
    assert undescribed == []
    # Wider needs are described once, on their object: each member is a plain "is there a need".
    assert "need" in SCHEMA["$defs"]["WiderNeeds"]["description"]


def test_every_code_is_enumerated() -> None:
    strings = [
        (path, node)
        for path, node in _leaves(SCHEMA, SCHEMA)
        if node.get("type") == "string" and "format" not in node
    ]
    unbound = {p for p, n in strings if not {"enum", "const", "pattern"} & n.keys()}
    assert unbound == set()  # even text has a pattern: no control characters (ONE_LINE)
    free = {p for p, n in strings if n.get("pattern") in PATTERN_WORDS}
    # Only names, places and notes are free text; everything else is a code or a pattern.
    assert free == {
        "/person/given_name",
        "/person/family_name",
        "/release/accommodation/local_authority",
        "/release_plan/responsible_officer/name",
        "/release_plan/treatment_appointment/location",
        "/nps_use/substances/0/local_name",
        "/nps_use/treatment_in_custody/clinical_notes",
        "/other_substance_use/notes",
        "/safeguarding/concerns",
        "/consent/0/recorded_by",
    }


@pytest.mark.parametrize("days_later", [0, 1, 45, 400, 3000])
def test_the_example_moved_to_any_day_is_plausible_that_day(days_later: int) -> None:
    today = examples.WRITTEN_ON + timedelta(days=days_later)
    moved = examples.release_notice(today)
    notice = ReleaseNotice.model_validate(moved)
    arrival = datetime.combine(today, time(12), tzinfo=UTC)
    assert implausible(notice, arrival) == []
    assert date.fromisoformat(moved["release"]["release_date"]) - today == timedelta(days=9)
    # Moved as a whole: the same age, the same gaps between the events it records.
    assert notice.nps_use.last_use_date == today - timedelta(days=2)
    assert examples.release_notice(examples.WRITTEN_ON) == EXAMPLE


def test_the_example_as_written_is_plausible_the_day_it_was_written() -> None:
    arrival = datetime.combine(examples.WRITTEN_ON, time(9), tzinfo=UTC)
    assert implausible(ReleaseNotice.model_validate(EXAMPLE), arrival) == []
