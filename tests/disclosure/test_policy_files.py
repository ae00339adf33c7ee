"""Reading the policy files (app/disclosure/policy_files.py): refusals naming the file and rule,
and the hash that ties every decision to the exact text that made it. Pure, no database."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.disclosure.policy import PolicyError
from app.disclosure.policy_files import load_policy
from app.notices.document import ReleaseNotice
from app.updates.document import DOCUMENTS

ROOT = Path(__file__).resolve().parents[2]
CONSENT_DIR = ROOT / "consent"
POLICY = load_policy(CONSENT_DIR, ReleaseNotice, DOCUMENTS)
PROBATION, SMS = "probation_provider", "substance_misuse_service"
CLINICAL = "probation_clinical_details"


# --- load_policy refusals ----------------------------------------------------------------------


def base_rule(**changes: Any) -> dict[str, Any]:
    item = {"id": "t.rule", "recipient": PROBATION, "effect": "allow", "fields": ["/nps_use"]}
    item |= {"lawful_basis": ["A basis."], "purpose": "A purpose.", "rationale": "A rationale."}
    item |= {"requires": "statutory", **changes}
    if item["effect"] != "allow" and "requires" not in changes:
        del item["requires"]
    return {k: v for k, v in item.items() if v is not None}


# Every policy must send safeguarding to probation, or it is refused: the hand-made ones do.
SAFEGUARDING_RULE = base_rule(id="t.safeguarding", fields=["/safeguarding"])


def write_policy(
    directory: Path,
    rules: list[dict[str, Any]],
    name: str = "policy.yaml",
    *,
    safeguarding: bool = True,
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    rules = [*rules, SAFEGUARDING_RULE] if safeguarding and name == "policy.yaml" else rules
    (directory / name).write_text(yaml.safe_dump({"version": "t1", "rules": rules}))
    return directory


REFUSALS = {
    "not-in-schema": [base_rule(fields=["/nps_use/colour"])],
    "into-array": [base_rule(fields=["/nps_use/substances/category"])],
    "duplicate-id": [base_rule(), base_rule()],
    "deny-without-reason": [base_rule(effect="deny")],
    "unknown-key": [base_rule(colour="red")],
    "missing-basis": [base_rule(lawful_basis=None)],
    "unknown-recipient": [base_rule(recipient="prison")],
    "allow-unless-consent": [base_rule(unless={"consent": CLINICAL})],
    "deny-requires-consent": [base_rule(effect="deny", reason="r", requires={"consent": SMS})],
    "unknown-effect": [base_rule(effect="maybe")],
    "no-fields": [base_rule(fields=[])],
    "fields-not-a-list": [base_rule(fields="/nps_use")],
}


@pytest.mark.parametrize("rules", REFUSALS.values(), ids=REFUSALS.keys())
def test_load_policy_refuses_naming_the_rule(tmp_path: Path, rules: list[Any]) -> None:
    with pytest.raises(PolicyError, match=r"t\.rule"):
        load_policy(write_policy(tmp_path / "consent", rules), ReleaseNotice)


BAD_FILES = [{"version": "t1", "rules": ["not a mapping"]}, {"rules": []}, ["not", "a", "map"]]


@pytest.mark.parametrize("document", BAD_FILES, ids=["rule-not-a-mapping", "no-version", "list"])
def test_load_policy_refuses_a_bad_file_naming_it(tmp_path: Path, document: Any) -> None:
    directory = tmp_path / "consent"
    directory.mkdir()
    (directory / "bad.yaml").write_text(yaml.safe_dump(document))
    with pytest.raises(PolicyError, match=r"bad\.yaml"):
        load_policy(directory, ReleaseNotice)


def test_load_policy_refuses_duplicate_id_across_files(tmp_path: Path) -> None:
    directory = write_policy(tmp_path / "consent", [base_rule()], "a.yaml")
    write_policy(directory, [base_rule(fields=["/safeguarding"])], "b.yaml")
    with pytest.raises(PolicyError, match=r"t\.rule.*duplicate"):
        load_policy(directory, ReleaseNotice)


def test_load_policy_refuses_empty_directory(tmp_path: Path) -> None:
    directory = tmp_path / "empty"
    directory.mkdir()
    (directory / "README.md").write_text("not a policy")
    with pytest.raises(PolicyError, match="empty"):
        load_policy(directory, ReleaseNotice)


def test_load_policy_accepts_a_valid_rule(tmp_path: Path) -> None:
    policy = load_policy(write_policy(tmp_path / "consent", [base_rule()]), ReleaseNotice)
    assert policy.version == "t1"
    assert [r.id for r in policy.rules] == ["t.rule", "t.safeguarding"]
    assert policy.rules[0].fields == ("/nps_use",)


# --- the policy hash ---------------------------------------------------------------------------


def copy_of_consent(target: Path) -> Path:
    shutil.copytree(CONSENT_DIR, target)
    return target


def test_policy_hash_is_stable_for_identical_bytes(tmp_path: Path) -> None:
    first = load_policy(copy_of_consent(tmp_path / "one"), ReleaseNotice, DOCUMENTS)
    again = load_policy(tmp_path / "one", ReleaseNotice, DOCUMENTS)
    elsewhere = load_policy(copy_of_consent(tmp_path / "two"), ReleaseNotice, DOCUMENTS)
    assert first.sha256 == again.sha256 == elsewhere.sha256 == POLICY.sha256
    assert len(first.sha256) == 64


CHANGES = {
    "comment-added": lambda text: text + "\n# a reviewer's comment\n",
    "purpose-reworded": lambda text: text.replace("Data minimisation.", "Minimise."),
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_policy_hash_changes_when_a_file_changes(tmp_path: Path, change) -> None:
    directory = copy_of_consent(tmp_path / "consent")
    path = directory / "release-notice.yaml"
    before = load_policy(directory, ReleaseNotice, DOCUMENTS)
    changed = change(path.read_text())
    assert changed != path.read_text()
    path.write_text(changed)
    after = load_policy(directory, ReleaseNotice, DOCUMENTS)
    assert after.sha256 != before.sha256
    assert [r.id for r in after.rules] == [r.id for r in before.rules]


def test_load_policy_refuses_versions_longer_than_the_record_holds(tmp_path: Path) -> None:
    directory = tmp_path / "consent"
    for name in ("a.yaml", "b.yaml", "c.yaml"):
        write_policy(directory, [base_rule(id=f"t.{name[0]}")], name)
        text = (directory / name).read_text().replace("version: t1", "version: 2026-11-22.1")
        (directory / name).write_text(text)
    with pytest.raises(PolicyError, match="32 characters"):
        load_policy(directory, ReleaseNotice)
