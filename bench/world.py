"""The processes a benchmark runs, and the exchange's world: database, organisations, clients,
tokens, subscriptions, and a supply of distinct notices.

Everything runs as it would in production: the `exchange` console script for set-up, `exchange
serve` and `exchange worker` as processes of their own, and a PostgreSQL database of the run's own,
dropped and made again at the start.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from app.notices import examples
from bench.httpload import Connection, Request

ADMIN_URL = os.environ.get(  # used only to create each run's own databases
    "EXCHANGE_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
# Two runs on one machine (say, two checkouts) keep apart by name and ports.
NAME = os.environ.get("EXCHANGE_BENCH_NAME", "exchange_bench")  # its databases' name prefix
PORT = int(os.environ.get("EXCHANGE_BENCH_PORT", "8310"))  # the first of its five ports

BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
RECIPIENTS = ("N07", "SMS-LEEDS")  # the example notice's recipients
ORGANISATIONS = (
    ("prison", "MDI", "HMP Moorland"),
    ("probation_provider", "N07", "Probation North East"),
    ("substance_misuse_service", "SMS-LEEDS", "Forward Leeds"),
    ("auditor", "AUDIT", "Information Governance"),
)


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def cpu_seconds(pid: int) -> float:
    """CPU time a process has used, user and system (/proc/<pid>/stat): unlike a rate, it
    hardly moves with what else the machine is doing."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """The live processes `pid` started, theirs, and so on (/proc/<pid>/task/*/children)."""
    found, parents = [], [pid]
    while parents:
        for task in Path(f"/proc/{parents.pop()}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:  # the task or the process has gone
                continue
            found += children
            parents += children
    return found


def machine_cpu_seconds() -> float:
    """CPU time the whole machine has been busy, all cores together (/proc/stat: user, nice,
    system, irq, softirq and steal; not idle or iowait)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


async def fresh_database(admin_url: str, name: str, template: str | None = None) -> str:
    """Drop and create database `name` on admin_url's server (a copy of `template`, if given);
    its SQLAlchemy URL."""
    connection = await asyncpg.connect(asyncpg_dsn(admin_url), timeout=5)
    copy = f' TEMPLATE "{template}"' if template else ""
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"{copy}')
    finally:
        await connection.close()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path

    def rss_mb(self) -> float:
        """Resident memory now, from /proc (VmRSS)."""
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"{self.name} has no VmRSS")

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.popen.pid)

    def cpu_seconds_by_process(self) -> dict[int, float]:
        """CPU time used by this process and by each live one it started (uvicorn's workers,
        with `--workers N`), by pid."""
        spent = {}
        for pid in [self.popen.pid, *descendants(self.popen.pid)]:
            try:
                spent[pid] = cpu_seconds(pid)
            except OSError:  # gone meanwhile
                continue
        return spent

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def check(self) -> None:
        if self.popen.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.name} exited ({self.popen.returncode}):\n{tail}")


@dataclass
class Runner:
    """Starts processes with their output in work_dir, and stops them all at the end."""

    work_dir: Path
    started: list[Process] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Process:
        log = self.work_dir / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(  # noqa: S603 (our own commands)
                argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
        self.started.append(Process(name, popen, log))
        return self.started[-1]

    def stop_all(self) -> None:
        for process in reversed(self.started):
            process.stop()


async def until_listening(process: Process, port: int, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while True:
        process.check()
        try:
            _, writer = await asyncio.open_connection(HOST, port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{process.name} is not listening on {port}") from None
            await asyncio.sleep(0.1)


async def until_ready(process: Process, port: int, answers: int = 10) -> None:
    """Listening, then `answers` successive 200s from /readyz: with several processes behind
    one port, the socket listens before every process has built its app."""
    await until_listening(process, port)
    ready = 0
    while ready < answers:
        process.check()
        connection = Connection(HOST, port)  # a new one each time: any process may take it
        status, _ = await connection.request("GET", "/readyz", {}, b"")
        connection.close()
        ready = ready + 1 if status == 200 else 0
        await asyncio.sleep(0.05)


async def catch_up_log(database_url: str, data_dir: Path) -> int:
    """Number the messages waiting in their inboxes and sequence the whole log now, as a running
    worker would have all along; how many log entries it sequenced.

    A delivery backlog is built with no worker running, so its messages are left unnumbered (a
    delivery waits for its message's number) and the log's entries for those notices (several
    each) unsequenced, and the worker that then drains the backlog would spend a share of its
    CPU on them (intake's log at 1,000 entries a second) rather than on deliveries. Run before a
    drain is measured: the worker still sequences the entries its own attempts write."""
    from app.audit.signer import load_log_signer
    from app.settings import Settings
    from app.storage.db import make_engine, make_sessionmaker
    from app.worker.loop import advance_log
    from app.worker.transactions import number

    settings = Settings(database_url=database_url, data_dir=data_dir)
    engine = make_engine(settings.database_url)
    try:
        sessions, signer, total = make_sessionmaker(engine), load_log_signer(settings), 0
        while await number(sessions):  # a batch a transaction, until none is left
            pass
        while sequenced := (await advance_log(sessions, settings, signer, sweep=True))[0]:
            total += sequenced
        return total
    finally:
        await engine.dispose()


def exchange_env(database_url: str, data_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of an exchange process; settings without their EXCHANGE_ prefix."""
    root = str(Path(__file__).resolve().parent.parent)
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
        "EXCHANGE_DATABASE_URL": database_url,
        "EXCHANGE_DATA_DIR": str(data_dir),
        "EXCHANGE_WEBHOOK_ALLOWED_CIDRS": "127.0.0.0/8",
        "EXCHANGE_EMBEDDED_WORKER": "false",
        **{f"EXCHANGE_{k.upper()}": v for k, v in settings.items()},
    }


def exchange(env: dict[str, str], *args: str) -> str:
    """Run the `exchange` command; what it printed."""
    argv = [str(BIN / "exchange"), *args]
    done = subprocess.run(argv, env=env, capture_output=True, text=True)  # noqa: S603
    if done.returncode:
        raise RuntimeError(f"exchange {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def register(env: dict[str, str]) -> dict[str, dict]:
    """The example's organisations and an auditor, each with an API client: code -> client."""
    clients = {}
    for kind, code, name in ORGANISATIONS:
        exchange(env, "org", "add", "--kind", kind, "--code", code, "--name", name)
        clients[code] = json.loads(exchange(env, "client", "add", "--org", code))
    return clients


class Api:
    """Calls to one exchange API process on behalf of its clients, with their tokens."""

    def __init__(self, port: int, clients: dict[str, dict]) -> None:
        self.port, self.clients = port, clients
        self._tokens: dict[str, tuple[str, float]] = {}

    async def call(self, method: str, path: str, document: object = None, *, as_: str) -> object:
        body = b"" if document is None else json.dumps(document).encode()
        headers = {"authorization": f"Bearer {await self.token(as_)}"}
        if document is not None:
            headers["content-type"] = "application/json"
        status, answer = await Connection(HOST, self.port).request(method, path, headers, body)
        if status >= 300:
            raise RuntimeError(f"{method} {path} as {as_}: {status} {answer[:500]!r}")
        return json.loads(answer) if answer else None

    async def token(self, code: str) -> str:
        token, until = self._tokens.get(code, ("", 0.0))
        if time.monotonic() < until:
            return token
        client = self.clients[code]
        basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode())
        headers = {
            "authorization": f"Basic {basic.decode()}",
            "content-type": "application/x-www-form-urlencoded",
        }
        form = b"grant_type=client_credentials"
        status, answer = await Connection(HOST, self.port).request(
            "POST", "/oauth/token", headers, form
        )
        if status != 200:
            raise RuntimeError(f"no token for {code}: {status} {answer[:300]!r}")
        document = json.loads(answer)
        self._tokens[code] = (document["access_token"], time.monotonic() + 200)  # of 300 s
        return document["access_token"]

    async def subscribe(self, receiver_port: int) -> None:
        for code in RECIPIENTS:
            url = f"http://{HOST}:{receiver_port}/hooks/{code}"
            await self.call("POST", "/v1/subscriptions", {"url": url}, as_=code)


def noms_number(n: int) -> str:
    """The n-th of 175 million distinct NOMS-shaped numbers: a letter, 4 digits, 2 letters."""
    n, digits = divmod(n, 10_000)
    n, suffix = divmod(n, 26 * 26)
    return f"{chr(65 + n % 26)}{digits:04d}{chr(65 + suffix // 26)}{chr(65 + suffix % 26)}"


class Notices:
    """Distinct release notices (one person each), as ready-made requests from the prison."""

    def __init__(self, token: str, first: int = 0) -> None:
        example = examples.release_notice(date.today())
        self.template = json.dumps(example, separators=(",", ":"))
        self.placeholder = json.dumps(example["person"]["noms_number"])
        self.token, self.next = token, first

    def make(self) -> tuple[Request, str]:
        number = noms_number(self.next)
        self.next += 1
        body = self.template.replace(self.placeholder, json.dumps(number), 1).encode()
        headers = {
            "authorization": f"Bearer {self.token}",
            "content-type": "application/json",
            "idempotency-key": str(uuid.uuid4()),
        }
        return ("POST", "/v1/release-notices", headers, body), number

    def baseline(self) -> tuple[Request, str]:
        (_, _, _, body), number = self.make()
        return ("POST", "/notices", {"content-type": "application/json"}, body), number
