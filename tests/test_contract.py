"""The committed contract matches the code, and the canonical example satisfies it."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from app import contract
from app.notice import ReleaseNotice

ROOT = Path(__file__).resolve().parent.parent
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
    (tmp_path / "schemas" / "examples").mkdir(exist_ok=True)
    (tmp_path / "schemas" / "examples" / "release-notice.json").write_text(json.dumps(EXAMPLE))
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
