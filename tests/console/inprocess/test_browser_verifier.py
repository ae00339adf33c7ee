"""The browser verifier (app/console/static/verify.mjs) under Node's WebCrypto, no browser: it
refuses every checkpoint the Python verifier (app/audit/checkpoint.py parse_and_verify)
refuses, each correctly signed (another log's origin, more than four lines, a root not 32
bytes or not canonical base64, any "time ..." text, a leading zero, a control character); and
it notices a rewritten log: having verified an entry under one root, it refuses another root
for the same tree size (the exchange signs its own checkpoints, so a signature alone proves
only that the server signed that tree)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _run(script: str) -> object:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is missing")
    path = Path(__file__).with_name(script)
    done = subprocess.run([node, str(path), str(ROOT)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_browser_refuses_what_the_python_verifier_refuses():
    found = _run("verifier_origin.mjs")
    assert found.pop("good")["accepted"]
    accepted = {label: r for label, r in found.items() if r["accepted"]}
    assert not accepted, f"verify.mjs accepts checkpoints the Python verifier refuses: {accepted}"
    assert "another log" in found["another_origin"]["why"]


def test_a_rewritten_entry_after_verification_is_not_verified_again():
    first, second = _run("verifier_rewritten_log.mjs")
    assert first["verified"]
    assert not second["verified"], (
        f"two histories of one log, both verified: {first['actor']} under {first['root']}; "
        f"then {second['actor']} under {second['root']}"
    )
    assert second["last"][1] is False and "rewritten" in second["last"][2]
