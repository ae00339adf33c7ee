"""What a notice's own work costs in CPU, with no database and no HTTP: the floor under intake.

`python -m bench.domain_cost [COUNT] [--json]` builds the exchange's real signing (policy,
signing keys, data keys) in a temporary data directory, then repeats, COUNT times, the work
intake does for the example notice that needs no query: validating the body, sealing it,
deciding for both recipients and explaining each decision, signing, sealing and hashing a
message for each, and writing the canonical JSON of the nine log entries a notice makes. It
prints CPU ms per notice (as JSON with --json, as the intake phase of `python -m bench` takes it),
piece by piece (time.process_time, so the machine's other load moves it little).

Beside the intake baseline's rate this is a bound: at 0.6 of a one-row insert's rate, one API
process has 1 / (0.6 * baseline_rps) seconds for everything a notice costs, this included.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from app.audit import entries as audit
from app.disclosure.explanations import explanation
from app.disclosure.policy import decide
from app.keys.jose import sign
from app.keys.sealing import place
from app.main import create_app
from app.notices import examples
from app.notices.document import ReleaseNotice
from app.settings import Settings
from app.wire.canonical import canonical_json

ROLES = ("probation_provider", "substance_misuse_service")
LOG_ENTRIES = 9  # what one notice to two subscribed recipients writes to the log


def measure(count: int) -> Counter[str]:
    data_dir = Path(tempfile.mkdtemp(prefix="exchange-domain-"))
    os.environ["EXCHANGE_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("EXCHANGE_DATABASE_URL", f"sqlite+aiosqlite:///{data_dir}/x.db")
    signing = create_app(Settings()).state.signing  # the keys are made on first start
    raw = json.dumps(examples.release_notice(date.today())).encode()
    spent: Counter[str] = Counter()

    def timed(piece: str, work: Callable[..., Any], *args: Any) -> Any:
        started = time.process_time()
        result = work(*args)
        spent[piece] += time.process_time() - started
        return result

    def seal_body(body: dict) -> str:
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
        signing.data_keys.seal(canonical.encode(), place("release_notice", "x", uuid.uuid4()))
        signing.data_keys.person_ref(body["person"]["noms_number"])
        return audit.sha256_hex(canonical)

    def decided(body: dict, role: str) -> dict:
        decision = decide(signing.policy, body, role, consents={"substance_misuse_service": True})
        explanation(signing.policy, decision)
        return decision.disclosure

    def message(disclosure: dict, now: datetime) -> None:
        claims = {"iss": signing.issuer, "aud": "N07", "iat": int(now.timestamp())}
        jws = sign(signing.keyring, {**claims, **disclosure}, typ="JWT")
        signing.data_keys.seal(jws.encode(), place("message", "x", uuid.uuid4()))
        audit.sha256_hex(jws)

    def log_entries(now: datetime) -> None:
        for n in range(LOG_ENTRIES):
            canonical_json({"action": "x", "details": {"n": n, "at": now.isoformat()}})

    for _ in range(count):
        now = datetime.now(UTC)
        notice = timed("validate the body", ReleaseNotice.model_validate_json, raw)
        body = notice.model_dump(mode="json", exclude_unset=True)
        timed("seal the body, person ref", seal_body, body)
        for role in ROLES:
            disclosure = timed("decide and explain, both recipients", decided, body, role)
            timed("sign, seal and hash a message, both recipients", message, disclosure, now)
        timed("canonical JSON of the log entries", log_entries, now)
    return spent


async def apart(env: dict[str, str], count: int = 1000) -> dict:
    """This measure in a process of its own (its own data directory, no database), as the
    intake phase of `python -m bench` takes it: the JSON it prints."""
    env = {k: v for k, v in env.items() if k != "EXCHANGE_DATABASE_URL"}
    done = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bench.domain_cost", str(count), "--json"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await done.communicate()
    if done.returncode:
        raise RuntimeError(f"bench.domain_cost failed ({done.returncode})")
    return json.loads(out)


def main(count: int, as_json: bool = False) -> None:
    measure(50)  # warm: imports, caches, the keys' first use
    spent = measure(count)
    if as_json:  # for the intake phase of `python -m bench`
        pieces = {piece: round(1000 * seconds / count, 3) for piece, seconds in spent.items()}
        total = round(1000 * sum(spent.values()) / count, 3)
        print(json.dumps({"notices": count, "cpu_ms": pieces, "cpu_ms_in_all": total}))
        return
    print(f"{count} notices, CPU per notice, no database, no HTTP:")
    for piece, seconds in spent.items():
        print(f"  {1000 * seconds / count:6.3f} ms  {piece}")
    print(f"  {1000 * sum(spent.values()) / count:6.3f} ms  in all")


if __name__ == "__main__":
    numbers = [a for a in sys.argv[1:] if a != "--json"]
    main(int(numbers[0]) if numbers else 1000, as_json="--json" in sys.argv[1:])
