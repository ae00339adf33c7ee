"""The results file (`bench/results/<date>.json`) and the table in bench/README.md."""

from __future__ import annotations

import json
import math
import os
import platform
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
START, END = "<!-- results: written by `make bench` -->", "<!-- /results -->"

# The issues' targets (8, and 23 where it set its own): key -> (comparison, bound, what it
# measures).
TARGETS: dict[str, tuple[str, float, str]] = {
    "statements_per_notice": ("<=", 6, "SQL statements the API sends for a first-version notice"),
    "api_cpu_ms_per_notice": ("<=", 3, "the API process's CPU per notice under intake's load (ms)"),
    "intake_ratio": (">=", 0.3, "intake rate over the bare FastAPI insert's"),
    "intake_p99_ms": ("report", 0, "intake p99 latency under the same load (ms)"),
    "scaleout_ratio": (">=", 1.7, "notices/s two API processes accept over what one accepts"),
    "e2e_p50_ms": ("<=", 50, "202 to both webhooks received, p50, 50 notices/s (ms)"),
    "e2e_p99_ms": ("<=", 100, "the same, p99 (ms)"),
    "delivery_ratio": (">=", 0.7, "one worker's deliveries/s over a bare httpx loop's"),
    "audit_verify_1m_s": ("<=", 10, "`exchange audit verify` of the whole log (s)"),
    "inclusion_proof_ms": ("<=", 10, "an inclusion proof over HTTP at that size, p95 (ms)"),
    "person_query_p95_ms": ("<=", 20, "entries about one person over HTTP, p95 (ms)"),
    "growth_ratio": ("<=", 1.2, "intake p50 at the large size over that at the small"),
    "rss_mb": ("<", 200, "API resident memory after the notices below (MB)"),
    # Issue 24 item 6 (bench/deadlines_phase.py).
    "overdue_idle_ms": ("<=", 100, "an idle overdue scan pass at 1M messages, 100k open, p50 (ms)"),
    "overdue_idle_p95_ms": ("<=", 100, "the same, p95 (ms)"),
    "overdue_idle_ratio": ("<=", 1.2, "that idle pass's p50 at 1M over at 10,000"),
    "overdue_busy_ms": ("<=", 100, "a scan batch alerting 100 deadlines due, at 1M, p50 (ms)"),
    "overdue_busy_ratio": ("<=", 1.2, "that batch's p50 at 1M over at 10,000"),
    "continuity_report_ms": ("<", 1000, "continuity report, 70,000 releases, use case, p50 (ms)"),
    "continuity_report_http_ms": ("<", 1000, "the same over HTTP, by month, p50 (ms)"),
}


def met(key: str, value: float) -> str:
    comparison, bound, _ = TARGETS[key]
    if comparison == "report" or not isinstance(value, int | float) or math.isnan(value):
        return ""
    ok = {">=": value >= bound, "<=": value <= bound, "<": value < bound}[comparison]
    return "yes" if ok else "**no**"


def machine(postgres_version: str) -> dict[str, object]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": postgres_version,
    }


def table(results: dict, scale: dict, details: dict) -> str:
    e2e = details.get("end_to_end", {})
    overloaded = e2e and e2e["accepted"] < e2e["notices"]
    rows = ["| measure | target | measured | met |", "|---|---|---|---|"]
    for key, (comparison, bound, what) in TARGETS.items():
        value = results.get(key, float("nan"))
        target = "reported" if comparison == "report" else f"{comparison} {bound:g}"
        verdict = met(key, value)
        if key.startswith("e2e_") and overloaded:  # fast from a 202 that came seconds late
            verdict = "**no**: overloaded"
        rows.append(f"| {what} (`{key}`) | {target} | {value} | {verdict} |")
    stored = details.get("growth", {}).get("stored", scale["large_notices"])  # whole people
    small = details.get("growth", {}).get("small_stored", scale["small_notices"])
    facts = (
        f"Intake {results.get('intake_rps')} notices/s against the baseline's "
        f"{results.get('baseline_rps')}, {scale['clients']} clients; delivery "
        f"{results.get('delivery_rps')}/s against the bare loop's "
        f"{results.get('delivery_baseline_rps')}/s; log of {scale['log_entries']:,} entries; "
        f"growth from {small:,} to {stored:,} stored notices; "
        f"memory after {scale['memory_notices']:,} notices."
    )
    rounds = details.get("delivery", {}).get("rounds")
    if rounds:
        pairs = ", ".join(
            f"{r['worker_rps']}/{r['bare_rps']} ({r['worker_rps'] / r['bare_rps']:.3f})"
            for r in rounds
        )
        facts += (
            f" Delivery in {len(rounds)} rounds, worker/bare loop deliveries per second (ratio):"
            f" {pairs}; the rates above are their medians, the ratio the median of theirs."
        )
    if e2e:
        processes = e2e.get("api_processes", 1)
        facts += (
            f" End to end (the API in {processes} process{'es' if processes > 1 else ''}):"
            f" {e2e['accepted']:,} of {e2e['notices']:,} notices offered at {e2e['rate']:g}/s"
            f" were accepted, with intake p50 {e2e['intake_p50_ms']:,} ms"
        )
        if "from_request_p50_ms" in e2e:
            facts += (
                f" and p99 {e2e['intake_p99_ms']:,} ms under that load; from each request's"
                f" sending to both webhooks, p50 {e2e['from_request_p50_ms']:,} ms and p99"
                f" {e2e['from_request_p99_ms']:,} ms."
            )
        else:
            facts += " under that load."
    growth = details.get("growth", {})
    if "rounds_p50_ms" in growth.get("small", {}):
        facts += (
            f" Growth, one notice at a time, the sizes in turn: p50 {growth['small']['p50_ms']} ms"
            f" at {small:,} notices (rounds"
            f" {min(growth['small']['rounds_p50_ms'])}-{max(growth['small']['rounds_p50_ms'])}),"
            f" {growth['large']['p50_ms']} ms at {stored:,} (rounds"
            f" {min(growth['large']['rounds_p50_ms'])}-{max(growth['large']['rounds_p50_ms'])})."
        )
    floor = details.get("intake", {}).get("statements_floor")
    if floor:
        measured = "; ".join(
            f"{n} statements {f['rps']}/s ({f['ratio']})" for n, f in sorted(floor.items(), key=_n)
        )
        facts += (
            " The bare endpoint with n one-row statements in its transaction, doing nothing else"
            f" (rate, and its ratio to the one-row baseline): {measured}."
        )
    facts += _intake_budget(results, details.get("intake", {}))
    facts += _scaleout(details.get("scaleout", {}))
    return "\n".join(rows) + "\n\n" + facts


def _intake_budget(results: dict, intake: dict) -> str:
    """What the target ratio (and 0.6, beyond it) leaves one API process per notice, beside
    what a notice costs."""
    own, floor = intake.get("own_work"), intake.get("statements_floor", {})
    if not own or "cpu_ms_per_request" not in intake.get("exchange", {}):
        return ""
    with_floor = "".join(
        f", {f['cpu_ms_per_request']} ms with {n}" for n, f in sorted(floor.items(), key=_n)
    )
    target = TARGETS["intake_ratio"][1]
    counted = intake.get("counted")
    sent = (
        f" A first-version notice sent {counted['statements']:g} statements and made"
        f" {counted['python_calls']:,} Python calls (`bench.profile_intake`, in process)."
        if counted
        else ""
    )
    return (
        f" At {target:g} of the baseline's rate (0.6 beyond it), its one API process has"
        f" {1000 / (target * results['baseline_rps']):.2f} ms"
        f" ({1000 / (0.6 * results['baseline_rps']):.2f} ms) of CPU a notice. The bare endpoint"
        f" spends {intake['baseline']['cpu_ms_per_request']} ms a request with one statement"
        f"{with_floor}; a notice's own work, with no HTTP, framework or database"
        f" (`bench.domain_cost`), {own['cpu_ms_in_all']} ms; the exchange's API process spent"
        f" {intake['exchange']['cpu_ms_per_request']} ms a notice.{sent}"
    )


def _scaleout(scaleout: dict) -> str:
    """Each round of the scale-out phase: the two rates, their ratio, and where the CPU went."""
    rounds = scaleout.get("rounds")
    if not rounds:
        return ""
    each = "; ".join(
        f"{r['one']['rps']}/{r['two']['rps']} ({r['ratio']}), p99 {r['one']['p99_ms']}"
        f"/{r['two']['p99_ms']} ms, API CPU {r['one']['cpu_ms_per_request']}"
        f"/{r['two']['cpu_ms_per_request']} ms a notice, machine busy"
        f" {r['one']['machine_busy_cores']}/{r['two']['machine_busy_cores']} cores"
        for r in rounds
    )
    return (
        f" Scale-out in {len(rounds)} rounds, one API process/two ({scaleout['clients']} clients,"
        f" the load generator and PostgreSQL on the same two cores): {each}; the ratio above is"
        " the median of the rounds'."
    )


def _full_size(document: dict) -> bool:
    return document.get("scale", {}).get("large_notices", 0) >= 1_000_000


def _n(item: tuple) -> int:
    return int(item[0])  # JSON made the statement counts strings


def write(document: dict, day: str, quick: bool) -> Path:
    """The results file; for a full run, the README's table too. A run of some phases at full
    size is named after them (`<date>-deadlines.json`), a quick one `<date>-quick.json`."""
    results_dir = HERE / "results"
    results_dir.mkdir(exist_ok=True)
    suffix = "-quick" if quick else ""
    if quick and _full_size(document):  # some phases, at full size
        suffix = "-" + "-".join(document.get("phases") or ["some"])
    path = results_dir / f"{day}{suffix}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    if not quick:
        m = document["machine"]
        described = (
            f"Run of {day} on {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, Linux "
            f"{m['kernel']}, Python {m['python']}, {m['postgresql']} (`bench/results/{path.name}`)."
        )
        measured = table(document["results"], document["scale"], document["details"])
        section = f"{START}\n{described}\n\n{measured}\n{END}"
        text = README.read_text()
        pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
        README.write_text(pattern.sub(lambda _: section, text) if START in text else text + section)
    return path


if __name__ == "__main__":  # `python -m bench.report FILE`: the README's table again, from FILE
    import sys

    results_file = Path(sys.argv[1])
    write(json.loads(results_file.read_text()), results_file.stem, quick=False)
