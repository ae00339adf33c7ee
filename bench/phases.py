"""The measurements, one function each, every one beside its baseline in the same run.

Each takes the Run (the processes and the world) and returns the figures it measured. Rates
count only successful answers; latencies are nearest-rank percentiles in milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from bench import domain_cost, profile_intake
from bench.httpload import Connection, Sample, closed_loop, open_loop, percentile
from bench.world import (
    BIN,
    HOST,
    PORT,
    Api,
    Notices,
    Process,
    Runner,
    asyncpg_dsn,
    catch_up_log,
    exchange_env,
    until_listening,
)

PYTHON = sys.executable
# Statements per transaction at which the bare endpoint is measured again: 15 is what the
# exchange sent per notice before issue 23 (`python -m bench.profile_intake`), 6 its target.
FLOOR_STATEMENTS = (2, 5, 6, 10, 15)
API_PORT, BASELINE_PORT, RECEIVER_PORT, E2E_PORT = PORT, PORT + 1, PORT + 2, PORT + 3
SMALL_PORT = PORT + 4  # growth: an API process on the copy of the database at the small size


@dataclass(frozen=True)
class Scale:
    clients: int = 16  # concurrent intake clients
    warmup_seconds: float = 5
    intake_seconds: float = 30
    floor_seconds: float = 10  # each of the statements floor's runs
    e2e_rate: float = 50
    e2e_seconds: float = 60
    e2e_api_processes: int = 2  # as the API is deployed on this machine: one per core
    scaleout_rounds: int = 3  # one API process, then two (or two, then one), this many times
    small_notices: int = 10_000  # growth: the first size ...
    large_notices: int = 1_000_000  # ... and the second
    growth_requests: int = 500  # sequential notices timed at each size ...
    growth_rounds: int = 10  # ... in this many rounds a size, the sizes taking turns
    memory_notices: int = 100_000  # notices the API process has handled when its RSS is read
    log_entries: int = 1_000_000
    log_persons: int = 100_000
    log_queries: int = 200


QUICK = Scale(
    warmup_seconds=2,
    intake_seconds=10,
    floor_seconds=4,
    e2e_seconds=15,
    small_notices=2_000,
    large_notices=20_000,
    growth_requests=200,
    growth_rounds=4,
    memory_notices=3_000,
    log_entries=50_000,
    log_persons=5_000,
    log_queries=100,
)


@dataclass
class Run:
    scale: Scale
    runner: Runner
    database_url: str
    data_dir: Path
    api: Api
    api_process: Process
    worker: Process | None = None
    handled: int = 0  # notices the API process (api_process) has answered
    elsewhere: int = 0  # notices other API processes answered (e2e's, growth's, earlier ones)
    details: dict = field(default_factory=dict)

    def env(self, **settings: str) -> dict[str, str]:
        return exchange_env(self.database_url, self.data_dir, **settings)

    async def sql(self, query: str) -> object:
        connection = await asyncpg.connect(asyncpg_dsn(self.database_url))
        try:
            return await connection.fetchval(query)
        finally:
            await connection.close()

    async def vacuum(self) -> None:
        """VACUUM ANALYZE, as autovacuum would have by now: this machine's cluster runs none, so
        without it dead rows pile up (the inbox counters are updated twice a notice) and the
        planner has no statistics for tables that grew from nothing."""
        await self.sql("VACUUM ANALYZE")

    async def notices(self) -> Notices:
        # Numbered past every notice posted so far, to whichever instance: each a new person.
        return Notices(await self.api.token("MDI"), first=self.handled + self.elsewhere)

    async def post(
        self,
        *,
        clients: int,
        seconds: float | None = None,
        requests: int | None = None,
        port: int = API_PORT,
    ):
        notices = await self.notices()
        samples, elapsed = await closed_loop(
            HOST, port, notices.make, clients=clients, seconds=seconds, requests=requests
        )
        if port == API_PORT:
            self.handled += len(samples)
        else:
            self.elsewhere += len(samples)
        return samples, elapsed

    def start_worker(self) -> None:
        self.worker = self.runner.start("worker", [str(BIN / "exchange"), "worker"], self.env())

    def stop_worker(self) -> None:
        if self.worker:
            self.worker.stop()
            self.worker = None


def cpu_per_request(process: Process, before: float, samples: list[Sample]) -> dict:
    """The process's CPU time per request answered since `before` (its cpu_seconds then)."""
    spent = process.cpu_seconds() - before
    return {"cpu_ms_per_request": round(1000 * spent / max(len(samples), 1), 2)}


def summary(samples: list[Sample], elapsed: float, accepted: int = 202) -> dict:
    ok = [s for s in samples if s.status == accepted]
    latencies = [s.latency_ms for s in ok]
    return {
        "requests": len(samples),
        "failed": len(samples) - len(ok),
        "rps": round(len(ok) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
    }


async def intake(run: Run) -> dict:
    """Notices a second through the whole path, and a bare FastAPI insert's, same load; the
    API process's CPU per notice (/proc), and the statements a first-version notice sends
    (bench.profile_intake, in a process and database of its own)."""
    scale = run.scale
    baseline = run.runner.start(
        "baseline",
        [PYTHON, "-m", "bench.baseline", run.database_url, str(BASELINE_PORT)],
        run.env(),
    )
    try:
        await until_listening(baseline, BASELINE_PORT)
        notices = await run.notices()

        async def bare(path: str, seconds: float) -> dict:
            def make() -> tuple:
                (method, _, headers, body), number = notices.baseline()
                return (method, path, headers, body), number

            await closed_loop(
                HOST, BASELINE_PORT, make, clients=scale.clients, seconds=scale.warmup_seconds
            )
            cpu = baseline.cpu_seconds()
            samples = await closed_loop(
                HOST, BASELINE_PORT, make, clients=scale.clients, seconds=seconds
            )
            return summary(*samples) | cpu_per_request(baseline, cpu, samples[0])

        base = await bare("/notices", scale.intake_seconds)
        # The same endpoint with n one-row statements in its transaction: the most this stack
        # (uvicorn, FastAPI, SQLAlchemy async, asyncpg) serves at n statements, doing nothing else.
        floor = {n: await bare(f"/statements/{n}", scale.floor_seconds) for n in FLOOR_STATEMENTS}
    finally:
        baseline.stop()
    for figures in floor.values():
        figures["ratio"] = round(figures["rps"] / base["rps"], 3)
    own_work = await domain_cost.apart(run.env())  # with the floor, the bound on the ratio
    await run.post(clients=scale.clients, seconds=scale.warmup_seconds)
    cpu = run.api_process.cpu_seconds()
    samples = await run.post(clients=scale.clients, seconds=scale.intake_seconds)
    exchange = summary(*samples) | cpu_per_request(run.api_process, cpu, samples[0])
    counted = await profile_intake.apart(run.env())  # statements a notice, in a world apart
    run.details["intake"] = {
        "clients": scale.clients,
        "exchange": exchange,
        "baseline": base,
        "statements_floor": floor,
        "own_work": own_work,
        "counted": counted,
    }
    return {
        "statements_per_notice": counted["statements"],
        "api_cpu_ms_per_notice": exchange["cpu_ms_per_request"],
        "intake_rps": exchange["rps"],
        "baseline_rps": base["rps"],
        "intake_ratio": round(exchange["rps"] / base["rps"], 3),
        "intake_p50_ms": exchange["p50_ms"],
        "intake_p99_ms": exchange["p99_ms"],
        "baseline_p99_ms": base["p99_ms"],
    }


async def receiver(method: str, path: str) -> object:
    _, body = await Connection(HOST, RECEIVER_PORT).request(method, path, {}, b"")
    return json.loads(body)


async def until_received(count: int, within: float) -> int:
    deadline = time.monotonic() + within
    while (got := (await receiver("GET", "/_stats"))["count"]) < count:
        if time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.05)
    return got


def rate(arrivals: list) -> float:
    """Arrivals a second, from the first arrival to the last (start-up excluded)."""
    times = sorted(ns for _, ns in arrivals)
    return (len(times) - 1) / ((times[-1] - times[0]) / 1e9) if len(times) > 1 else 0.0


async def delivery(run: Run, concurrency: int, rounds: int = 5) -> dict:
    """One worker draining the backlog intake left, in `rounds` parts; after each part, a bare
    httpx loop sends that part's requests again to the same receiver, with as many in flight as
    the worker may have. Each pair is measured within seconds of each other, so a shared
    machine's changing speed weighs on both alike; the ratio is the median of the rounds'. The
    messages intake stored are numbered and the log it wrote sequenced first
    (world.catch_up_log), as a worker running all along would have: the worker measured
    sequences only what its own attempts log. The worker is left running for the phases
    after."""
    pending = await run.sql("SELECT count(*) FROM delivery WHERE state = 'pending'")
    unnumbered = await run.sql("SELECT count(*) FROM message WHERE sequence IS NULL")
    sequenced = await catch_up_log(run.database_url, run.data_dir)
    await run.vacuum()  # after intake's minutes of writes
    measured, got = [], 0
    for part in range(1, rounds + 1):
        await receiver("POST", "/_reset")
        run.start_worker()
        until = pending * part // rounds - got  # the last round drains what is left
        await until_received(until, within=max(120, until / 20))
        if part < rounds:
            run.stop_worker()  # in flight finished, the rest released: the next round's
        arrivals = await receiver("GET", "/_arrivals")
        got += len(arrivals)
        measured.append({"deliveries": len(arrivals), "worker_rps": rate(arrivals)})
        measured[-1]["bare_rps"] = await bare_loop(run, concurrency)
    ratios = [m["worker_rps"] / m["bare_rps"] for m in measured]
    run.details["delivery"] = {
        "pending": pending,
        "delivered": got,
        "in_flight": concurrency,
        "messages_numbered_before": unnumbered,
        "log_entries_sequenced_before": sequenced,
        "rounds": [{k: round(v, 1) for k, v in m.items()} for m in measured],
    }
    return {
        "delivery_rps": round(statistics.median(m["worker_rps"] for m in measured), 1),
        "delivery_baseline_rps": round(statistics.median(m["bare_rps"] for m in measured), 1),
        "delivery_ratio": round(statistics.median(ratios), 3),
    }


async def bare_loop(run: Run, concurrency: int) -> float:
    """The requests the receiver captured, sent again by the bare loop: its rate."""
    replay = run.data_dir.parent / "captured.json"
    replay.write_text(json.dumps(await receiver("GET", "/_captured")))
    await receiver("POST", "/_reset")
    base_url = f"http://{HOST}:{RECEIVER_PORT}"
    done = await asyncio.create_subprocess_exec(
        PYTHON, "-m", "bench.bare_loop", base_url, str(replay), str(concurrency)
    )
    await done.wait()
    return rate(await receiver("GET", "/_arrivals"))


async def end_to_end(run: Run) -> dict:
    """A steady rate of notices; for each, from its 202 to both recipients' webhooks received."""
    scale = run.scale
    await run.vacuum()  # after the delivery phase's writes
    await receiver("POST", "/_reset")
    notices = await run.notices()
    samples = await open_loop(
        HOST, E2E_PORT, notices.make, rate=scale.e2e_rate, seconds=scale.e2e_seconds
    )
    run.elsewhere += len(samples)  # answered by the e2e instance, not by api_process
    accepted = [s for s in samples if s.status == 202]
    wanted = {
        s: [r["message_id"] for r in json.loads(s.body)["recipients"] if r["message_id"]]
        for s in accepted
    }
    await until_received(sum(map(len, wanted.values())), within=120)
    arrived = dict(await receiver("GET", "/_arrivals"))  # webhook-id is the message id
    last = {  # the last of the notice's webhooks to arrive
        s: max(arrived[m] for m in ids)
        for s, ids in wanted.items()
        if ids and all(m in arrived for m in ids)
    }
    # From the 202 (the target): below zero when both webhooks came before the answer did.
    spans = [(at - s.done_ns) / 1e6 for s, at in last.items()]
    whole = [(at - s.sent_ns) / 1e6 for s, at in last.items()]  # from the request's sending
    intake = [s.latency_ms for s in accepted]
    run.details["end_to_end"] = {
        "rate": scale.e2e_rate,
        "api_processes": scale.e2e_api_processes,
        "notices": len(samples),
        "accepted": len(accepted),
        "complete": len(spans),
        "intake_p50_ms": round(percentile(intake, 50), 2),
        "intake_p99_ms": round(percentile(intake, 99), 2),
        "from_request_p50_ms": round(percentile(whole, 50), 2),
        "from_request_p99_ms": round(percentile(whole, 99), 2),
    }
    return {
        "e2e_p50_ms": round(percentile(spans, 50), 2),
        "e2e_p99_ms": round(percentile(spans, 99), 2),
    }


async def growth(run: Run) -> tuple[dict, dict]:
    """Intake p50 with one client (only the work done for a notice is timed) at the large size
    (API_PORT) and at the small (SMALL_PORT, a copy of the database made at that size), the two
    taking turns in rounds: this machine's speed drifts by a third within minutes, so sizes timed
    one after the other, most of an hour apart, measured the drift (1.091 and then 1.579 for the
    same code, in the seventh and eighth runs). Each process is warmed up first, untimed."""
    scale = run.scale
    per_round = max(scale.growth_requests // scale.growth_rounds, 1)
    sizes = {"small": SMALL_PORT, "large": API_PORT}
    for port in sizes.values():
        await run.post(clients=1, requests=20, port=port)
    samples: dict[str, list[Sample]] = {size: [] for size in sizes}
    rounds: dict[str, list[float]] = {size: [] for size in sizes}
    for turn in range(scale.growth_rounds):
        order = list(sizes.items()) if turn % 2 == 0 else list(reversed(sizes.items()))
        for size, port in order:
            got, _ = await run.post(clients=1, requests=per_round, port=port)
            samples[size] += got
            rounds[size].append(summary(got, 1)["p50_ms"])
    figures = {size: summary(got, 1) for size, got in samples.items()}
    for size, figure in figures.items():
        del figure["rps"]  # sequential: a rate would say only what the latency does
        figure["rounds_p50_ms"] = rounds[size]
    ratio = figures["large"]["p50_ms"] / figures["small"]["p50_ms"]
    return {"growth_ratio": round(ratio, 3)}, figures


async def fill(run: Run, total: int, *, clients: int) -> None:
    """Post notices until the database holds `total` (a minute at a time, for fresh tokens),
    then VACUUM ANALYZE, as autovacuum would have by then (this machine's cluster runs none)."""
    while (stored := await run.sql("SELECT count(*) FROM release_notice")) < total:
        await run.post(clients=clients, requests=min(total - stored, 6000))
    await run.vacuum()


async def memory(run: Run) -> dict:
    """The API process's resident memory once it has answered memory_notices notices; VACUUM
    ANALYZE after each batch, as autovacuum would (this machine's cluster runs none: without it
    intake slowed from about 38 to 10 notices/s over 24,000, on dead counter and key rows)."""
    series, rates = [], []
    while run.handled < run.scale.memory_notices:
        left = run.scale.memory_notices - run.handled
        samples, elapsed = await run.post(clients=run.scale.clients, requests=min(left, 6000))
        series.append((run.handled, round(run.api_process.rss_mb(), 1)))
        rates.append(round(len(samples) / elapsed, 1))
        await run.vacuum()
    run.details["memory"] = {"rss_mb_by_notices_handled": series, "notices_per_s": rates}
    return {"rss_mb": round(run.api_process.rss_mb(), 1)}
