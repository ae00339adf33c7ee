"""The README's walk-through runs from top to bottom as pasted, against a real `make run`.

The exchange is started by `make run PORT=<a free port>`, as a reader would start it, on the
test's database; the section's ```sh blocks then run in order in bash (-e, -u, pipefail), from a
scratch directory laid out like a clone (`.venv` and `var/`). The one line changed is the
`exchange=` address, to that port. What the blocks printed is then checked, and the issuer of a
token the server gave: the port's.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## A walk through, from a second terminal"
ADDRESS = re.compile(r"^exchange=http://127\.0\.0\.1:8000\b", flags=re.MULTILINE)


def section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION)
    return text[start : text.index("\n## ", start + len(SECTION))]


def shell_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", section(), flags=re.DOTALL)


def commands(block: str) -> list[str]:
    """Each command line, continuation lines joined."""
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def idempotent_paths() -> list[re.Pattern[str]]:
    """The POSTs whose operation takes an Idempotency-Key, per the published contract."""
    document = json.loads((ROOT / "openapi" / "openapi.json").read_text())
    return [
        re.compile(re.sub(r"\{[^}]+\}", '[^/"]+', path) + r"[\"']?(\s|$)")
        for path, item in document["paths"].items()
        if any(
            p["in"] == "header" and p["name"] == "idempotency-key"
            for p in item.get("post", {}).get("parameters", [])
        )
    ]


def test_it_leaves_nothing_to_fill_in_by_hand() -> None:
    for block in shell_blocks():
        assert re.findall(r"<[A-Za-z_ -]+>", block) == []


def test_every_organisation_it_registers_gets_a_client() -> None:
    script = "\n".join(shell_blocks())
    registered = re.findall(r"exchange org add .*--code (\S+)", script)
    with_client = re.findall(r"exchange client add --org (\S+)", script)
    assert sorted(registered) == sorted(with_client)
    assert "SMS-LEEDS" in registered


def test_every_post_that_takes_an_idempotency_key_sends_one() -> None:
    posts = [
        line
        for block in shell_blocks()
        for line in commands(block)
        if "curl" in line and re.search(r"\s(-d|--data\S*)\s", line)
    ]
    paths = idempotent_paths()
    assert paths  # the contract names some
    needing = [line for line in posts if any(p.search(line) for p in paths)]
    assert len(needing) >= 3  # the notice, the same notice again, the amendment
    for line in needing:
        assert re.search(r"-H ['\"]idempotency-key: \S+['\"]", line, flags=re.IGNORECASE), line


def test_make_run_takes_a_port_and_the_issuer_follows(tmp_path: Path) -> None:
    """The command line `make run PORT=...` runs, with a stand-in `exchange` recording it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "calls"
    fake = bin_dir / "exchange"
    fake.write_text(f'#!/bin/sh\necho "$EXCHANGE_ISSUER|$*" >> {record}\n')
    fake.chmod(0o755)

    def calls(*make_args: str, **env: str) -> list[str]:
        record.unlink(missing_ok=True)
        clean = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
        subprocess.run(
            [
                "make",
                "-s",
                "-C",
                str(ROOT),
                "-o",
                ".venv/.installed",
                "run",
                f"BIN={bin_dir}",
                *make_args,
            ],
            env={**clean, **env},
            check=True,
            timeout=60,
        )
        return record.read_text().splitlines()

    assert calls("PORT=8001")[-1] == "http://127.0.0.1:8001|serve --host 127.0.0.1 --port 8001"
    assert calls()[-1] == "http://127.0.0.1:8000|serve --host 127.0.0.1 --port 8000"
    mine = "https://exchange.example.org"  # an issuer of the user's own is kept
    assert calls("PORT=8001", EXCHANGE_ISSUER=mine)[-1] == (
        f"{mine}|serve --host 127.0.0.1 --port 8001"
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Path]]:
    """`make run PORT=...` on the test's database, its data in a clone-like scratch directory."""
    for tool in ("make", "curl", "jq"):
        if shutil.which(tool) is None:
            pytest.skip(f"the walk-through needs {tool}")
    if not (ROOT / ".venv" / "bin" / "exchange").exists():
        pytest.skip("the walk-through runs the clone's .venv: make venv")
    clone = tmp_path / "clone"
    (clone / "var").mkdir(parents=True)
    (clone / ".venv").symlink_to(ROOT / ".venv")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env |= {
        "EXCHANGE_DATABASE_URL": database_url,
        "EXCHANGE_DATA_DIR": str(clone / "var"),
        "EXCHANGE_WEBHOOK_ALLOWED_CIDRS": "127.0.0.0/8",
    }
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        ["make", "-C", str(ROOT), "-o", ".venv/.installed", "run", f"PORT={port}"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # make, its shell and the server: stopped together
    )
    address = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"{address}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.3)
        yield address, env, clone
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_the_walk_through_runs_as_pasted(served) -> None:
    address, env, clone = served
    script, changed = ADDRESS.subn(f"exchange={address}", "\n".join(shell_blocks()))
    assert changed == 1
    ran = subprocess.run(
        ["bash", "-e", "-u", "-o", "pipefail", "-c", script],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "/problems/" not in ran.stdout  # no call was answered with a problem
    assert "idempotent-replayed: true" in ran.stdout.lower()

    accepted = json.loads((clone / "var" / "accepted.json").read_text())
    assert accepted["status"] == "accepted" and len(accepted["recipients"]) == 2
    prison = json.loads((clone / "var" / "prison.json").read_text())
    token = httpx.post(
        f"{address}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(prison["client_id"], prison["client_secret"]),
    ).json()["access_token"]
    assert claims(token)["iss"] == address  # `make run PORT=...` set the issuer to match
    followed = httpx.get(
        f"{address}/v1/release-notices/{accepted['id']}",
        headers={"authorization": f"Bearer {token}"},
    ).json()
    assert [v["version"] for v in followed["history"]] == [1, 2]  # posted once, then amended
