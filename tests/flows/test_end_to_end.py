"""What a new user does: an empty database, set up by the CLI, a real server, real webhooks.

Each webhook is checked with the `standardwebhooks` library and each JWS with PyJWT against the
served JWKS: neither is the code that made them.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from sqlalchemy.engine import make_url
from standardwebhooks.webhooks import Webhook

from tests.helpers.receiver import running_receiver

ROOT = Path(__file__).resolve().parents[2]
EXCHANGE = str(Path(sys.executable).parent / "exchange")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def environment(database_url: str, tmp_path: Path) -> dict[str, str]:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        Path(url.database or "").unlink()  # start from nothing: `exchange db upgrade` builds it
    port = _free_port()
    return {
        **os.environ,
        "EXCHANGE_DATABASE_URL": database_url,
        "EXCHANGE_DATA_DIR": str(tmp_path / "var"),
        "EXCHANGE_ISSUER": f"http://127.0.0.1:{port}",
        "EXCHANGE_WEBHOOK_ALLOWED_CIDRS": "127.0.0.0/8",
        "EXCHANGE_WORKER_POLL_SECONDS": "0.1",
        "PORT": str(port),
    }


def exchange(env: dict[str, str], *args: str) -> dict:
    done = subprocess.run(
        [EXCHANGE, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else {}


@pytest.fixture
def server(environment: dict[str, str]) -> Iterator[str]:
    exchange(environment, "db", "upgrade")
    base = environment["EXCHANGE_ISSUER"]
    process = subprocess.Popen(
        [EXCHANGE, "serve", "--port", environment["PORT"]],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            time.sleep(0.1)
        else:
            pytest.fail("the server did not become ready")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)


def token(base: str, credentials: dict) -> dict[str, str]:
    response = httpx.post(
        f"{base}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(credentials["client_id"], credentials["client_secret"]),
    )
    assert response.status_code == 200, response.text
    return {"authorization": f"Bearer {response.json()['access_token']}"}


def test_a_release_notice_reaches_both_recipients_signed_and_minimised(
    environment: dict[str, str], server: str, example: dict
) -> None:
    for kind, code, name in [
        ("prison", "MDI", "HMP Moorland"),
        ("probation_provider", "N07", "Probation North East"),
        ("substance_misuse_service", "SMS-LEEDS", "Leeds Recovery Service"),
    ]:
        created = exchange(
            environment, "org", "add", "--kind", kind, "--code", code, "--name", name
        )
        assert created["code"] == code and created["kind"] == kind
    prison = exchange(environment, "client", "add", "--org", "MDI")
    assert prison["scopes"] == (
        "acknowledgements:write consents:write messages:read release-notices:write reports:read "
        "subscriptions:write"
    )
    recipients = {
        code: exchange(environment, "client", "add", "--org", code) for code in ("N07", "SMS-LEEDS")
    }

    with running_receiver() as receiver:
        secrets = {}
        for code, credentials in recipients.items():
            response = httpx.post(
                f"{server}/v1/subscriptions",
                json={"url": f"{receiver.url}/{code}"},
                headers=token(server, credentials),
            )
            assert response.status_code == 201, response.text
            secrets[code] = response.json()["secret"]

        posted = httpx.post(
            f"{server}/v1/release-notices",
            content=json.dumps(example).encode(),  # the example moved to today, as sent by hand
            headers={**token(server, prison), "content-type": "application/json"},
        )
        assert posted.status_code == 202, posted.text
        assert posted.headers["location"] == f"/v1/release-notices/{posted.json()['id']}"
        routed = {r["organisation_code"]: r["role"] for r in posted.json()["recipients"]}
        assert routed == {"N07": "probation_provider", "SMS-LEEDS": "substance_misuse_service"}

        received = receiver.wait_for(2)

    jwks = httpx.get(f"{server}/.well-known/jwks.json").json()
    claims = {}
    for request in received:
        code = request.path.rsplit("/", 1)[-1]
        event = Webhook(secrets[code]).verify(request.body, request.headers)
        assert event["type"] == "disclosure.created"
        assert request.headers["webhook-id"] == event["data"]["message_id"]
        compact = event["data"]["jws"]
        header = jwt.get_unverified_header(compact)
        assert header["alg"] == "ES256" and header["typ"] == "disclosure+jwt"
        key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
        claims[code] = jwt.decode(
            compact, jwt.PyJWK(key).key, algorithms=["ES256"], audience=code, issuer=server
        )
        assert claims[code]["jti"] == event["data"]["message_id"]
        assert claims[code]["notice_id"] == posted.json()["id"]
        assert claims[code]["sub"] == "A1234BC"
        assert set(claims[code]["policy"]) == {"version", "sha256"}

    probation, treatment = claims["N07"], claims["SMS-LEEDS"]
    # Rule 1: no clinical notes for probation without probation_clinical_details consent.
    assert "clinical_notes" not in probation["disclosure"]["nps_use"]["treatment_in_custody"]
    assert {
        "path": "/nps_use/treatment_in_custody/clinical_notes",
        "rule": "probation.clinical-notes",
        "reason": "consent_not_given",
    } in probation["manifest"]
    # Rule 2: the treatment service had consent, so it was sent the clinical notes.
    assert treatment["disclosure"]["nps_use"]["treatment_in_custody"]["clinical_notes"]
    # Rule 3: safeguarding always goes to probation.
    assert probation["disclosure"]["safeguarding"]["children_contact"] == "yes"
    assert "pattern" in probation["disclosure"]["nps_use"]

    # The worker records the outcome just after the receiver answers: wait for it, bounded.
    headers, states = token(server, prison), []
    for _ in range(100):
        status = httpx.get(f"{server}/v1/release-notices/{posted.json()['id']}", headers=headers)
        states = [d["state"] for r in status.json()["recipients"] for d in r["deliveries"]]
        if states == ["delivered", "delivered"]:
            break
        time.sleep(0.05)
    assert states == ["delivered", "delivered"]


def test_serve_with_two_workers_runs_two_api_processes_that_all_answer(
    environment: dict[str, str], example: dict
) -> None:
    """`exchange serve --workers 2`, as deployed on a 2-core machine: two processes behind one
    port, each with the app built from the same settings; SIGTERM stops them all."""
    exchange(environment, "db", "upgrade")
    for kind, code in [
        ("prison", "MDI"),
        ("probation_provider", "N07"),
        ("substance_misuse_service", "SMS-LEEDS"),
    ]:
        exchange(environment, "org", "add", "--kind", kind, "--code", code, "--name", code)
    prison = exchange(environment, "client", "add", "--org", "MDI")
    base = environment["EXCHANGE_ISSUER"]
    process = subprocess.Popen(
        [EXCHANGE, "serve", "--port", environment["PORT"], "--workers", "2"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        children: list[str] = []
        deadline = time.monotonic() + 60
        while len(children) < 2 or not _answers(f"{base}/readyz", 10):
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "two ready API processes did not start"
            children = _api_processes(process.pid)
            time.sleep(0.2)
        # Every connection is a chance for either process: each must accept a notice.
        for _ in range(6):
            with httpx.Client(base_url=base) as fresh:  # a new connection each time
                posted = fresh.post(
                    "/v1/release-notices",
                    json={**example, "person": {**example["person"], "noms_number": f"A{_:04d}BC"}},
                    headers=token(base, prison),
                )
            assert posted.status_code == 202, posted.text
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0
    assert len(children) == 2
    for child in children:  # each stopped by its parent before the parent exited
        assert not Path(f"/proc/{child}").exists(), "an API process outlived its parent"


def _api_processes(parent: int) -> list[str]:
    """The parent's children that serve (multiprocessing also starts a resource tracker)."""
    pids = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    serving = []
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # it may have ended
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                serving.append(pid)
    return serving


def _answers(url: str, times: int) -> bool:
    """`times` successive 200s, each on a new connection."""
    try:
        return all(httpx.get(url, timeout=1).status_code == 200 for _ in range(times))
    except httpx.TransportError:
        return False
