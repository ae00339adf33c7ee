"""Verify in your browser: the checkpoint's signature and an entry's inclusion proof checked by
WebCrypto in Chromium, with the auditor's own verifier key; a tampered proof, a tampered entry
and a wrong key each fail."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.audit import merkle
from app.audit.checkpoint import verifier_key
from app.worker.loop import advance_log
from tests.console.conftest import axe, screenshot, sign_in


async def _verify(page, vkey: str, leaf_index: int) -> tuple[str, list[str]]:
    await page.fill("#verifier_key", vkey)
    await page.fill("#leaf_index", str(leaf_index))
    await page.evaluate("document.getElementById('verify-result').replaceChildren()")
    await page.get_by_role("button", name="Verify").click()
    outcome = page.locator("#verify-outcome")
    await outcome.wait_for()
    checks = await page.locator("#verify-result .console-check").all_inner_texts()
    return await outcome.get_attribute("data-outcome"), checks


async def test_a_proof_verifies_with_the_auditors_key(world, log, served, page):
    await sign_in(page, served, "auditor-alice", start="/console/verify")
    await page.check("#save_key")
    outcome, checks = await _verify(page, log.verifier_key, 3)
    assert outcome == "verified", checks
    assert len(checks) == 7 and all(c.startswith("Passed") for c in checks)
    assert await axe(page) == []
    await screenshot(page, "verify")
    await page.reload()  # the key was kept in this browser
    assert await page.input_value("#verifier_key") == log.verifier_key


async def test_a_newer_checkpoint_must_extend_the_one_verified_before(
    world, log, served, page, settings, example
):
    """The browser keeps the checkpoint it verified; the log grows and is signed again: the
    page fetches a consistency proof from the kept one and checks it. A different root for a
    size already verified (the server rewrote the log and signed it) fails."""
    await sign_in(page, served, "auditor-alice", start="/console/verify")
    outcome, checks = await _verify(page, log.verifier_key, 3)
    assert outcome == "verified" and "none verified before" in checks[3], checks
    size = int(checks[2].split(": ")[2].split(" ")[0])

    assert (await world.post_notice(example)).status_code == 202
    every_entry = settings.model_copy(update={"checkpoint_every_entries": 1})
    await advance_log(world.sessions, every_entry, log, now=datetime.now(UTC))
    outcome, checks = await _verify(page, log.verifier_key, 3)
    assert outcome == "verified", checks
    assert f"consistent with the one verified before ({size} entries)" in checks[3]

    async def rewritten(route):
        response = await route.fetch()
        body = await response.json()
        body["note"] = log.sign(body["tree_size"], bytes(32), datetime.now(UTC))
        await route.fulfill(response=response, body=json.dumps(body))

    await page.route("**/console/verify/checkpoint", rewritten)
    outcome, checks = await _verify(page, log.verifier_key, 3)
    assert outcome == "failed" and "the log was rewritten" in checks[-1], checks


async def test_a_tampered_proof_fails(world, log, served, page):
    async def tamper(route):
        response = await route.fetch()
        body = await response.json()
        first = bytearray(base64.b64decode(body["hashes"][0]))
        first[0] ^= 1
        body["hashes"][0] = base64.b64encode(bytes(first)).decode()
        await route.fulfill(response=response, body=json.dumps(body))

    await sign_in(page, served, "auditor-alice", start="/console/verify")
    await page.route("**/console/verify/proof*", tamper)
    outcome, checks = await _verify(page, log.verifier_key, 3)
    assert outcome == "failed"
    assert checks[-1] == "Failed: The inclusion proof does not lead to the signed root."


async def test_a_tampered_entry_fails(world, log, served, page):
    async def tamper(route):
        response = await route.fetch()
        body = await response.json()
        body["entry"]["action"] = "nothing.happened"
        await route.fulfill(response=response, body=json.dumps(body))

    await sign_in(page, served, "auditor-alice", start="/console/verify")
    await page.route("**/console/verify/proof*", tamper)
    outcome, checks = await _verify(page, log.verifier_key, 3)
    assert outcome == "failed"
    assert checks[-1] == "Failed: The entry does not hash to the leaf the server sent."


async def test_a_wrong_key_fails(world, log, served, page):
    name = log.verifier_key.split("+")[0]
    other = verifier_key(name, Ed25519PrivateKey.generate().public_key())
    await sign_in(page, served, "auditor-alice", start="/console/verify")
    outcome, checks = await _verify(page, other, 3)
    assert outcome == "failed"
    assert checks[-1] == f"Failed: The checkpoint is not signed by {name} with this key."
    outcome, checks = await _verify(page, "not a key", 3)
    assert outcome == "failed" and checks[0].startswith("Failed")


async def test_the_browsers_merkle_path_agrees_with_the_exchanges_for_every_leaf(
    world, served, page
):
    """Every leaf of every tree of 1 to 17 leaves: the root the browser's script reaches from
    app/audit/merkle.py's proof is the tree's root; a path with one hash changed is not."""
    cases = []
    for size in range(1, 18):
        leaves = [merkle.leaf_hash(str(i).encode()) for i in range(size)]
        hasher = merkle.subtree_hasher(leaves)
        root = merkle.root_hash(leaves)
        for index in range(size):
            path = merkle.inclusion_proof(index, size, hasher)
            cases.append([index, size, _b64(leaves[index]), [_b64(p) for p in path], _b64(root)])
    await sign_in(page, served, "auditor-alice", start="/console/verify")
    results = await page.evaluate(
        """async (cases) => {
          const m = await import('/console/assets/console/verify.mjs');
          const b = (t) => Uint8Array.from(atob(t), (c) => c.charCodeAt(0));
          const out = [];
          for (const [index, size, leaf, path, root] of cases) {
            const got = await m.rootFromPath(b(leaf), index, size, path.map(b));
            let tampered = 'no path';
            if (path.length) {
              const bad = path.map(b); bad[bad.length - 1][5] ^= 1;
              const reached = await m.rootFromPath(b(leaf), index, size, bad);
              tampered = btoa(String.fromCharCode(...reached));
            }
            out.push([btoa(String.fromCharCode(...got)) === root, tampered !== root]);
          }
          return out;
        }""",
        cases,
    )
    assert results == [[True, True]] * len(cases)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
