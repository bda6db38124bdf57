"""Run the benchmark suite: every case in a process of its own, one table, one JSON file.

Usage (from the project's root)::

    python -m benchmarks --quick                 # under a minute
    python -m benchmarks                         # the full run: a few minutes
    python -m benchmarks --only w/ --only reads  # some cases
    python -m benchmarks --set updates=50 --json figures.json

PostgreSQL cases run when ``--postgres`` or ``JOBLEDGER_TEST_POSTGRES`` names a
server (``eval "$(bash .ci/postgres)"`` starts a throwaway one); the peers'
cases need ``eventsourcing`` and ``dbos`` installed (``nox -s bench`` installs them).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.cases import CASES, RUNS_WHEN
from benchmarks.sizes import FULL, QUICK, Sizes

__all__ = ["TARGETS", "Target", "main"]

ROOT = Path(__file__).resolve().parent.parent

#: Seconds one case may take before it is stopped and reported as failed.
CASE_TIMEOUT = 1200


@dataclasses.dataclass(frozen=True)
class Target:
    """One target of the issue: a ratio of two measured medians and its limit.

    Attributes:
        name: What is compared.
        numerator: ``(case, metric)`` pairs; the fastest (lowest) median is taken
            when several are given, so a ratio is taken against the best of a
            peer's variants.
        denominator: ``(case, metric)`` pairs, the same way.
        limit: The bound the ratio must keep.
        at_most: Whether the ratio must be at most ``limit`` (else at least).
        higher_is_better: Whether the metrics are throughputs (the best of
            several variants is then the highest).
        absolute: Compare the numerator's median itself with ``limit`` (no ratio).
        reference: Not a target but a figure beside one, to say what the machine
            allows (the floor's own scaling, say); it has no limit to pass.
    """

    name: str
    numerator: tuple[tuple[str, str], ...]
    denominator: tuple[tuple[str, str], ...] = ()
    limit: float = 1.0
    at_most: bool = True
    higher_is_better: bool = False
    absolute: bool = False
    reference: bool = False


def _reads_target(backend: str, largest: int) -> Target:
    return Target(
        f"get-by-id {backend}: time at {largest:,} updates / at 10",
        ((f"reads/{backend}", f"get@{largest}"),),
        ((f"reads/{backend}", "get@10"),),
        limit=1.2,
    )


def _runner_targets(sizes: Sizes) -> tuple[Target, ...]:
    """Issue 13's targets: the runner against DBOS, at scale, and in memory."""
    against_dbos = tuple(
        Target(
            f"runner SQLite, {tasks:,} sequential tasks: jobledger per task / DBOS per step",
            (("runner/runs/sqlite", f"sequential@{tasks}"),),
            (("dbos/workflows/sqlite", f"sequential@{tasks}"),),
            limit=0.25,
        )
        for tasks in sizes.sequential_tasks
    )
    longest = max(sizes.sequential_tasks)
    also_normal = tuple(
        Target(
            f"  also at synchronous=NORMAL on both sides, {tasks:,} sequential tasks: "
            "jobledger / DBOS",
            (("runner/runs/sqlite-normal", f"sequential@{tasks}"),),
            (("dbos/workflows/sqlite-normal", f"sequential@{tasks}"),),
            reference=True,
        )
        for tasks in sizes.sequential_tasks
    )
    floor = (
        Target(
            "  durable floor: raw sqlite3, one FULL transaction of 3 small rows per task / "
            f"DBOS per step at {longest:,}",
            (("runner/floor/sqlite3-full", "transaction"),),
            (("dbos/workflows/sqlite", f"sequential@{longest}"),),
            reference=True,
        ),
        Target(
            "  durable floor: raw sqlite3, one FULL transaction of 3 small rows: us per task",
            (("runner/floor/sqlite3-full", "transaction"),),
            absolute=True,
            reference=True,
        ),
    )
    width = sizes.scale_width
    scale = Target(
        f"runner SQLite, steps of {width}: per task at {sizes.scale_tasks:,} tasks / at "
        f"{sizes.scale_base:,}",
        (("runner/scale/sqlite", f"{width}-wide@{sizes.scale_tasks}"),),
        (("runner/scale/sqlite", f"{width}-wide@{sizes.scale_base}"),),
        limit=1.3,
    )
    in_memory = (
        Target(
            f"runner in-memory, {longest:,} sequential tasks, default pools: us per task",
            (("runner/runs/memory", f"sequential@{longest}"),),
            limit=100.0,
            absolute=True,
        ),
        Target(
            f"runner in-memory, {sizes.wide_tasks:,} tasks {sizes.wide_width}-wide, default "
            "pools: us per task",
            (("runner/runs/memory", f"{sizes.wide_width}-wide@{sizes.wide_tasks}"),),
            limit=100.0,
            absolute=True,
        ),
    )
    return (
        *against_dbos,
        *also_normal,
        *floor,
        *((scale,) if sizes.scale_tasks else ()),
        *in_memory,
    )


def _service_targets(sizes: Sizes) -> tuple[Target, ...]:
    """Issue 16's target: what the service adds to a command's p50, on each backend.

    Judged with the lean client (``http.client``): the target is what the
    service adds, and services in any language call it. Beside it, not hidden:
    the same through ``JobsClient`` (whose own CPU shares the machine), the
    server's CPU per command, and the HTTP floors at the same width.
    """
    clients = sizes.service_clients
    rows: list[Target] = []
    for backend, name in (("sqlite", "SQLite"), ("postgres", "PostgreSQL")):
        case = f"service/{backend}"
        rows.extend(
            (
                Target(
                    f"service {name}, {clients} clients: p50 added per command, lean client (us)",
                    ((case, f"raw/added-p50@{clients}"),),
                    limit=1000.0,
                    absolute=True,
                ),
                Target(
                    "  the same through JobsClient (httpx, its CPU on the same cores) (us)",
                    ((case, f"added-p50@{clients}"),),
                    absolute=True,
                    reference=True,
                ),
                Target(
                    f"  server CPU per command, lean client, {clients} clients (us)",
                    ((case, f"raw/server-cpu@{clients}"),),
                    absolute=True,
                    reference=True,
                ),
                Target(
                    f"  HTTP floor (a 401), {clients} clients, lean client: p50 (us)",
                    ((case, f"raw/http-floor/p50@{clients}"),),
                    absolute=True,
                    reference=True,
                ),
            )
        )
    return tuple(rows)


def _group_commit_targets(sizes: Sizes) -> tuple[Target, ...]:
    """Issue 18's group commit: threads of one process on distinct jobs, against one thread.

    At ``full`` every commit waits for a flush, which threads committing
    together share; ``normal`` waits for none, so its scaling is the ceiling.
    """
    most = max(sizes.thread_writers)
    rows: list[Target] = []
    for backend, name in (("sqlite-full", "SQLite FULL"), ("sqlite-normal", "SQLite NORMAL")):
        case = f"writers/{backend}/threads"
        for writers in sizes.thread_writers:
            if writers == 1:
                continue
            target = backend == "sqlite-full" and writers == most
            rows.append(
                Target(
                    f"{'' if target else '  '}{name} group commit: {writers} threads / 1 thread",
                    ((case, f"writers={writers}"),),
                    ((case, "writers=1"),),
                    limit=3.0,
                    at_most=False,
                    higher_is_better=True,
                    reference=not target,
                )
            )
    rows.append(
        Target(
            f"  SQLite {most} threads: FULL / NORMAL (how near the ceiling)",
            (("writers/sqlite-full/threads", f"writers={most}"),),
            (("writers/sqlite-normal/threads", f"writers={most}"),),
            higher_is_better=True,
            reference=True,
        )
    )
    return tuple(rows)


def targets(sizes: Sizes) -> tuple[Target, ...]:
    """The issue's targets, for the sizes of this run."""
    largest = max(sizes.read_sizes)
    popo_cached = (
        ("w/eventsourcing/popo/cache", "w"),
        ("w/eventsourcing/popo/cache-noff", "w"),
    )
    postgres_peer = (
        ("w/eventsourcing/postgres/nocache", "w"),
        ("w/eventsourcing/postgres/cache", "w"),
        ("w/eventsourcing/postgres/cache-noff", "w"),
    )
    return (
        Target(
            "W in-memory: jobledger / dict floor (time per command)",
            (("w/jobledger/memory", "w"),),
            (("w/floor/dict", "w"),),
            limit=8.0,
        ),
        Target(
            "  the probe (jobledger's values, nothing else) / dict floor",
            (("w/probe/values", "w"),),
            (("w/floor/dict", "w"),),
            reference=True,
        ),
        Target(
            "W in-memory: eventsourcing+cache (best variant) / jobledger",
            popo_cached,
            (("w/jobledger/memory", "w"),),
            limit=10.0,
            at_most=False,
        ),
        Target(
            "W SQLite FULL: jobledger / raw sqlite3 FULL",
            (("w/jobledger/sqlite-full", "w"),),
            (("w/floor/sqlite3-full", "w"),),
            limit=1.3,
        ),
        Target(
            "W PostgreSQL: jobledger / one-statement psycopg floor",
            (("w/jobledger/postgres", "w"),),
            (("w/floor/psycopg-one", "w"),),
            limit=1.2,
        ),
        Target(
            "  the same against the five-round-trip psycopg floor",
            (("w/jobledger/postgres", "w"),),
            (("w/floor/psycopg", "w"),),
            reference=True,
        ),
        Target(
            "W PostgreSQL: eventsourcing (best variant) / jobledger",
            postgres_peer,
            (("w/jobledger/postgres", "w"),),
            limit=2.0,
            at_most=False,
        ),
        _reads_target("memory", largest),
        _reads_target("sqlite", largest),
        _reads_target("postgres", largest),
        Target(
            "PostgreSQL throughput: 8 writers / 1 writer (processes)",
            (("writers/postgres/processes", "writers=8"),),
            (("writers/postgres/processes", "writers=1"),),
            limit=3.0,
            at_most=False,
            higher_is_better=True,
        ),
        Target(
            "  the same for the raw psycopg floor (what this machine allows)",
            (("writers/floor/psycopg/processes", "writers=8"),),
            (("writers/floor/psycopg/processes", "writers=1"),),
            higher_is_better=True,
            reference=True,
        ),
        *(
            Target(
                f"  PostgreSQL throughput: {count} threads / 1 thread (one process)",
                (("writers/postgres/threads", f"writers={count}"),),
                (("writers/postgres/threads", "writers=1"),),
                higher_is_better=True,
                reference=True,
            )
            for count in sizes.thread_writers[1:]
        ),
        Target(
            "memory per stored update: jobledger in-memory / dict floor",
            (("memory/jobledger", "bytes"),),
            (("memory/floor/dict", "bytes"),),
            limit=2.0,
        ),
        Target(
            "runner overhead per no-op task, in-memory, default thread pools (us)",
            (("runner/memory/threads", "overhead"),),
            limit=100.0,
            absolute=True,
        ),
        Target(
            "runner overhead per no-op task, in-memory, inline executor (us)",
            (("runner/memory/inline", "overhead"),),
            limit=100.0,
            absolute=True,
        ),
        *_group_commit_targets(sizes),
        *_runner_targets(sizes),
        *_service_targets(sizes),
    )


TARGETS = targets(FULL)


# -- running ---------------------------------------------------------------------------------


def _run_case(name: str, sizes: Sizes, postgres: str | None) -> dict[str, Any]:
    """Run one case in a new process; return its result (or its error)."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.case",
        name,
        json.dumps(sizes.to_json()),
        postgres or "",
    ]
    began = time.perf_counter()
    try:
        done = subprocess.run(  # noqa: S603  (our own interpreter and module)
            command,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=CASE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"case": name, "error": f"timed out after {CASE_TIMEOUT} s"}
    seconds = time.perf_counter() - began
    lines = done.stdout.strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = done.stderr.strip().splitlines()[-3:]
        result = {"case": name, "error": f"exit {done.returncode}: " + " | ".join(tail)}
    if "error" in result and done.stderr:
        result["stderr"] = done.stderr[-4000:]
    result["seconds"] = round(seconds, 2)
    return result


def _median(result: dict[str, Any] | None, metric: str) -> float | None:
    if result is None or "metrics" not in result:
        return None
    entry = result["metrics"].get(metric)
    if not entry or not entry["values"]:
        return None
    return float(statistics.median(entry["values"]))


def _best(
    results: dict[str, dict[str, Any]], pairs: tuple[tuple[str, str], ...], *, highest: bool
) -> tuple[float, str] | None:
    found = [
        (value, case)
        for case, metric in pairs
        if (value := _median(results.get(case), metric)) is not None
    ]
    if not found:
        return None
    return max(found) if highest else min(found)


def evaluate(target: Target, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The target's measured value and whether it passes (``None``: not measured)."""
    top = _best(results, target.numerator, highest=target.higher_is_better)
    if target.absolute:
        value = None if top is None else top[0]
        basis = "" if top is None else top[1]
    else:
        bottom = _best(results, target.denominator, highest=target.higher_is_better)
        if top is None or bottom is None or bottom[0] == 0:
            value, basis = None, ""
        else:
            value, basis = top[0] / bottom[0], f"{top[1]} / {bottom[1]}"
    passed = (
        None
        if value is None or target.reference
        else (value <= target.limit if target.at_most else value >= target.limit)
    )
    return {
        "target": target.name,
        "limit": "-"
        if target.reference
        else ("<= " if target.at_most else ">= ") + f"{target.limit:g}",
        "value": value,
        "basis": basis,
        "passed": passed,
        "reference": target.reference,
    }


# -- reporting -------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the figures were taken on."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str] = {}
    for package in ("jobledger", "eventsourcing", "dbos", "psycopg", "attrs"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "-"
    import sqlite3  # noqa: PLC0415

    versions["sqlite"] = sqlite3.sqlite_version
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def _postgres_version(conninfo: str | None) -> str:
    if conninfo is None:
        return "-"
    try:
        import psycopg  # noqa: PLC0415

        with psycopg.connect(conninfo, connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except Exception as err:  # noqa: BLE001  (reported, not fatal)
        return f"unreachable ({type(err).__name__})"
    return "-" if row is None else str(row[0])


def _format(value: float) -> str:
    if value >= 1000:  # noqa: PLR2004  (thousands get separators)
        return f"{value:,.0f}"
    if value >= 10:  # noqa: PLR2004
        return f"{value:.1f}"
    return f"{value:.2f}"


def _throughput(entry: dict[str, Any], median: float) -> str:
    if entry["unit"] == "us/command":
        return f"{1e6 / median:,.0f} commands/s"
    if entry["unit"] == "us/get":
        return f"{1e6 / median:,.0f} gets/s"
    return ""


def _target_row(verdict: dict[str, Any]) -> tuple[str, ...]:
    value: float | None = verdict["value"]
    measured = "-" if value is None else (f"{value:.2f}" if value < 100 else f"{value:.0f}")  # noqa: PLR2004
    outcome = {None: "not measured", True: "PASS", False: "MISS"}[verdict["passed"]]
    if verdict["reference"] and value is not None:
        outcome = "reference"
    return (verdict["target"], measured, verdict["limit"], outcome, verdict["basis"])


def table(results: list[dict[str, Any]], verdicts: list[dict[str, Any]], header: list[str]) -> str:
    """The one table of the run: medians of every case, then the targets."""
    rows: list[tuple[str, ...]] = [("case", "metric", "median", "unit", "also", "reps (spread)")]
    for result in results:
        if "error" in result:
            rows.append((result["case"], "-", "FAILED", "", result["error"][:60], ""))
            continue
        if not result["metrics"]:
            rows.append((result["case"], "-", "skipped", "", "no server or peer", ""))
            continue
        one_writer = _median(result, "writers=1")
        for metric, entry in result["metrics"].items():
            values = entry["values"]
            median = statistics.median(values)
            spread = f"{len(values)} ({_format(min(values))}..{_format(max(values))})"
            also = _throughput(entry, median)
            if metric.startswith("writers=") and one_writer:
                also = f"{median / one_writer:.2f}x one writer"
            rows.append((result["case"], metric, _format(median), entry["unit"], also, spread))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = [*header, ""]
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    lines += ["", "targets (ratios of medians measured in this run)"]
    target_rows: list[tuple[str, ...]] = [("target", "measured", "limit", "result", "from")]
    target_rows.extend(map(_target_row, verdicts))
    widths = [max(len(row[column]) for row in target_rows) for column in range(5)]
    for index, row in enumerate(target_rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


# -- the command line ------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="jobledger's benchmarks against eventsourcing and the floors.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: under a minute")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="TEXT",
        help="run only the cases whose name contains TEXT (repeatable)",
    )
    parser.add_argument(
        "--skip", action="append", default=[], metavar="TEXT", help="skip cases containing TEXT"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SIZE=VALUE",
        help="override one size, e.g. updates=50, read_sizes=10,1000 (see benchmarks/sizes.py)",
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("JOBLEDGER_TEST_POSTGRES"),
        metavar="CONNINFO",
        help="the PostgreSQL server (default: $JOBLEDGER_TEST_POSTGRES; none: skip its cases)",
    )
    parser.add_argument(
        "--json",
        default="bench-results.json",
        metavar="PATH",
        help="where to write the raw figures (default: bench-results.json)",
    )
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    return parser.parse_args(argv)


def _sizes(arguments: argparse.Namespace) -> Sizes:
    sizes = QUICK if arguments.quick else FULL
    changes: dict[str, Any] = {}
    fields = {field.name: field for field in dataclasses.fields(Sizes)}
    for item in arguments.set:
        name, _, text = item.partition("=")
        if name not in fields:
            msg = f"unknown size {name!r}; known: {', '.join(fields)}"
            raise SystemExit(msg)
        current = getattr(sizes, name)
        if isinstance(current, tuple):
            changes[name] = tuple(int(part) for part in text.split(","))
        else:
            changes[name] = type(current)(text)
    return dataclasses.replace(sizes, **changes)


def main(argv: list[str] | None = None) -> int:
    """Run the selected cases; print the table; write the JSON file."""
    arguments = _parse(argv)
    if arguments.list:
        sys.stdout.write("\n".join(CASES) + "\n")
        return 0
    sizes = _sizes(arguments)
    names = [
        name
        for name in CASES
        if (not arguments.only or any(text in name for text in arguments.only))
        and not any(text in name for text in arguments.skip)
        and RUNS_WHEN.get(name, lambda _sizes: True)(sizes)
    ]
    began = time.perf_counter()
    results = []
    for name in names:
        sys.stderr.write(f"  {name} ...")
        sys.stderr.flush()
        result = _run_case(name, sizes, arguments.postgres)
        sys.stderr.write(f" {result['seconds']} s{' FAILED' if 'error' in result else ''}\n")
        results.append(result)
    by_name = {result["case"]: result for result in results}
    verdicts = [evaluate(target, by_name) for target in targets(sizes)]
    about = machine()
    about["postgres"] = _postgres_version(arguments.postgres)
    taken = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = [
        (
            f"jobledger benchmarks: {'quick' if arguments.quick else 'full'} run, {taken}, "
            f"{time.perf_counter() - began:.0f} s"
        ),
        (
            f"machine: {about['cpu']}, {about['cores']} cores; Python {about['python']}; "
            f"SQLite {about['versions']['sqlite']}; PostgreSQL {about['postgres']}; "
            f"eventsourcing {about['versions']['eventsourcing']}; dbos {about['versions']['dbos']}"
        ),
        f"sizes: {json.dumps(sizes.to_json())}",
    ]
    sys.stdout.write(table(results, verdicts, header) + "\n")
    document = {
        "taken": taken,
        "preset": "quick" if arguments.quick else "full",
        "machine": about,
        "sizes": sizes.to_json(),
        "results": results,
        "targets": verdicts,
    }
    path = Path(arguments.json)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    sys.stdout.write(f"\nraw figures: {path.resolve()}\n")
    return 1 if any("error" in result for result in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
