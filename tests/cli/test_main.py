"""The `exchange` command: JSON on stdout and nothing else; refusals on stderr, exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.keys.jose import load_keyring
from app.notices import examples
from app.notices.document import ReleaseNotice, implausible


def test_org_and_client_add_print_json_only(run) -> None:
    created = run("org", "add", "--kind", "prison", "--code", "MDI", "--name", "HMP Moorland")
    assert created.exit_code == 0, created.stderr
    assert json.loads(created.stdout)["kind"] == "prison"
    client = run("client", "add", "--org", "MDI")
    assert client.exit_code == 0
    assert set(json.loads(client.stdout)) == {"client_id", "client_secret", "scopes"}
    narrowed = run("client", "add", "--org", "MDI", "--scopes", "release-notices:write")
    assert json.loads(narrowed.stdout)["scopes"] == "release-notices:write"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("org", "add", "--kind", "pharmacy", "--code", "PH1", "--name", "x"), "kind must be"),
        (("org", "add", "--kind", "prison", "--code", "lower", "--name", "x"), "code must be"),
        (("org", "add", "--kind", "prison", "--code", "MDI", "--name", "again"), "already exists"),
        (("client", "add", "--org", "NOPE"), "no organisation"),
        (("client", "add", "--org", "MDI", "--scopes", "audit:read"), "may have only"),
    ],
)
def test_refusals_exit_2_with_a_reason_and_no_output(run, args, says) -> None:
    assert run("org", "add", "--kind", "prison", "--code", "MDI", "--name", "HMP").exit_code == 0
    result = run(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert says in result.stderr


def test_keys_rotate_keeps_the_old_key_published(run, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("EXCHANGE_SIGNING_KEY_GRACE_DAYS", "7")
    keys = tmp_path / "var" / "keys"
    first = load_keyring(keys).current.kid
    printed = json.loads(run("keys", "rotate").stdout)
    rotated = printed["kid"]
    ring = load_keyring(keys)
    assert ring.current.kid == rotated != first
    assert {k["kid"] for k in ring.jwks()["keys"]} == {first, rotated}
    retired_at = ring.by_kid[first].retired_at
    assert retired_at is not None
    assert abs(retired_at - datetime.now(UTC)) < timedelta(minutes=1)
    until = datetime.strptime(printed["retired_published_until"], "%Y-%m-%dT%H:%M:%S%z")
    assert until - retired_at == timedelta(days=7)
    assert printed["retired"] == first


def test_notice_example_prints_the_example_moved_to_today(run) -> None:
    result = run("notice", "example")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    today = datetime.now(UTC).date()
    assert printed == examples.release_notice(today)
    notice = ReleaseNotice.model_validate(printed)
    assert notice.release.release_date == today + timedelta(days=9)
    assert implausible(notice, datetime.now(UTC)) == []


def test_the_command_starts_without_the_web_framework_or_the_migrations() -> None:
    """`exchange audit verify`, `exchange worker` and the rest start in a fresh process each time
    (verify has a time target, issue 8): importing FastAPI and alembic cost them 0.6 s."""
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, app.cli.main; print(sorted({'fastapi', 'alembic'} & set(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"
