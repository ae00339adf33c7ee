"""consent/care-update.yaml: read and checked with the release notice's file, hashed with it, and
refused at start-up where it would keep safeguarding from probation or names no real field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from app.disclosure.policy import CARE_UPDATE, PolicyError
from app.disclosure.policy_files import load_policy
from app.notices.document import ReleaseNotice
from app.updates.document import DOCUMENTS
from tests.helpers.policies import CONSENT_DIR, POLICY


def edited(tmp_path: Path, change) -> Path:
    directory = tmp_path / "consent"
    shutil.copytree(CONSENT_DIR, directory)
    path = directory / "care-update.yaml"
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return directory


def test_the_shipped_file_governs_the_care_update():
    governs = POLICY.for_document(CARE_UPDATE)
    assert governs.document == CARE_UPDATE and POLICY.document == "release-notice"
    assert {r.id for r in governs.rules} & {r.id for r in POLICY.rules} == set()
    assert (governs.version, governs.sha256) == (POLICY.version, POLICY.sha256)
    assert "care-update" not in {r.source for r in POLICY.rules}


def test_the_hash_covers_the_care_update_file(tmp_path):
    directory = edited(tmp_path, lambda d: d.update(version="changed"))
    changed = load_policy(directory, ReleaseNotice, DOCUMENTS)
    assert changed.sha256 != POLICY.sha256 and "changed" in changed.version


def _deny_safeguarding(document):
    document["rules"].append(
        {
            "id": "update.probation.no-safeguarding",
            "recipient": "probation_provider",
            "effect": "deny",
            "reason": "not_necessary",
            "purpose": "p",
            "lawful_basis": ["b"],
            "rationale": "r",
            "fields": ["/safeguarding/concerns"],
        }
    )


def _drop_safeguarding(document):
    document["rules"] = [r for r in document["rules"] if r["id"] != "update.probation.safeguarding"]


def _consent_for_safeguarding(document):
    rule = next(r for r in document["rules"] if r["id"] == "update.probation.safeguarding")
    rule["requires"] = {"consent": "treatment_to_probation"}


def _mistyped(document):
    document["rules"][0]["fields"] = ["/engagment"]


def _unknown_document(document):
    document["document"] = "care-plan"


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (_deny_safeguarding, "a deny rule may not cover it"),
        (_drop_safeguarding, "no probation rule sends '/safeguarding"),
        (_consent_for_safeguarding, "this one requires consent"),
        (_mistyped, "'/engagment' is not a field of the care update"),
        (_unknown_document, "`document` must be one of release-notice, care-update"),
    ],
)
def test_the_exchange_refuses_to_start_with_a_care_update_policy_that(tmp_path, change, said):
    with pytest.raises(PolicyError, match=r"care-update\.yaml") as raised:
        load_policy(edited(tmp_path, change), ReleaseNotice, DOCUMENTS)
    assert said in str(raised.value)


def test_a_policy_without_the_care_update_file_does_not_start(tmp_path):
    directory = tmp_path / "consent"
    shutil.copytree(CONSENT_DIR, directory)
    (directory / "care-update.yaml").unlink()
    with pytest.raises(PolicyError, match="safeguarding must always reach the probation"):
        load_policy(directory, ReleaseNotice, DOCUMENTS)
