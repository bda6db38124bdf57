"""The one entry point for jobledger's checks: tests, lint, typing and docs.

Run ``nox`` for the default sessions, ``nox -s tests -- -k etag -x`` to pass
arguments through to pytest, and ``nox -l`` to list the sessions.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"
# venv + pip: what a fresh machine has, and pip honours the machine's pip configuration
# (certificates, mirrors) where uv does not. A session's install takes ~10 s; with uv
# installed, `nox -db uv` is faster still.
nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["tests", "lint", "typing", "docs"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
# Every extra whose modules the tests and doctests import.
TEST_EXTRAS = ".[testing,postgres,cli,server]"


def group(name: str) -> list[str]:
    """Return the requirements of a dependency group of pyproject.toml."""
    return list(nox.project.dependency_groups(PYPROJECT, name))


#: The variable that names the PostgreSQL server of the tests; "none" leaves them out.
POSTGRES_ENV = "JOBLEDGER_TEST_POSTGRES"
#: The script that starts (and stops) a throw-away PostgreSQL server.
POSTGRES_SCRIPT = Path(__file__).parent / ".ci" / "postgres"


def start_postgres(session: nox.Session) -> dict[str, str]:
    """Start a throw-away PostgreSQL server with .ci/postgres; return the variables naming it.

    Fails the session in one line when no server can be had.
    """
    started = subprocess.run(  # noqa: S603  (our own script)
        ["bash", str(POSTGRES_SCRIPT)],  # noqa: S607  (bash from the PATH)
        capture_output=True,
        text=True,
        check=False,
    )
    if started.returncode != 0:
        said = [line for line in started.stderr.splitlines() if line.strip()]
        session.error(
            "no PostgreSQL server for the PostgreSQL tests: "
            f"{said[-1] if said else 'the server did not start'} "
            f"(name one with {POSTGRES_ENV}=postgresql://..., or leave those tests out with "
            f"{POSTGRES_ENV}=none)"
        )
    found: dict[str, str] = {}
    for line in started.stdout.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:  # noqa: PLR2004
            name, _, value = words[1].partition("=")
            found[name] = value
    return found


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite and the doctests of src, docs/**/*.md and README.md.

    What pytest collects is configured in pyproject.toml (testpaths, addopts), so
    arguments after ``--`` narrow it down: ``nox -s tests -- tests/unit -x``.

    The PostgreSQL tests use the server JOBLEDGER_TEST_POSTGRES names. When it is
    not set, the session starts a throw-away server with ``.ci/postgres`` (which
    installs Debian's postgresql package when run as root and it is missing) and
    stops it at the end; when no server can be had, the session fails saying so.
    ``JOBLEDGER_TEST_POSTGRES=none`` leaves the PostgreSQL tests out on purpose.
    """
    # Editable, so pytest's --doctest-modules over src/ and the tests import the
    # very same jobledger modules.
    session.install("-e", TEST_EXTRAS, *group("tests"))
    named = os.environ.get(POSTGRES_ENV, "")
    if named.lower() == "none":
        session.log(f"{POSTGRES_ENV}=none: the PostgreSQL tests are left out")
        session.run("pytest", "-m", "not postgres", *session.posargs, env={POSTGRES_ENV: ""})
        return
    if named:
        session.run("pytest", *session.posargs)
        return
    server = start_postgres(session)
    try:
        session.run("pytest", *session.posargs, env=server)
    finally:
        session.run(
            "bash", str(POSTGRES_SCRIPT), "stop", server[f"{POSTGRES_ENV}_DIR"], external=True
        )


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and formatting (ruff) and the layer contracts (import-linter)."""
    session.install(*group("lint"))
    session.run("ruff", "check", "--no-cache", ".")
    session.run("ruff", "format", "--no-cache", "--check", ".")
    # import-linter reads the source tree; it needs jobledger importable, not installed.
    session.run("lint-imports", env={"PYTHONPATH": "src"})


@nox.session
def typing(session: nox.Session) -> None:
    """Type-check src and tests with mypy --strict (configured in pyproject.toml)."""
    session.install("-e", TEST_EXTRAS, *group("typing"))
    session.run("mypy", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the HTML docs with warnings as errors.

    The docs' ``>>>`` examples run as doctests in the tests session (pytest
    --doctest-glob), not here.
    """
    # autodoc imports every public module: jobledger.testing (pytest, hypothesis),
    # jobledger.postgres (psycopg), jobledger.cli (click, rich, for the CLI reference) and
    # jobledger.http (the server extra).
    session.install(".[docs,testing,postgres,cli,server]", *group("tests"))
    session.run(
        "sphinx-build",
        "--fresh-env",  # re-read every page so no warning hides in a cached environment
        "-W",
        "--keep-going",
        "-b",
        "html",
        "docs",
        "docs/_build/html",
        *session.posargs,
    )


# The peers the benchmarks compare jobledger with; installed in the bench session only.
BENCH_PEER = "eventsourcing[postgres]>=9.5,<10"
# The runner's peer: DBOS Transact's durable workflows (on a local SQLite file, no service).
BENCH_RUNNER_PEER = "dbos>=3.4,<4"


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Run the benchmarks: jobledger against its peers and the floors (benchmarks/README.md).

    Never part of the default sessions: the full run takes several minutes (a run of
    100,000 runner tasks on SQLite, about 90 s, is one of its cases). Arguments
    after ``--`` go to the suite: ``nox -s bench -- --quick`` (under a minute),
    ``nox -s bench -- --only w/ --json figures.json``. The PostgreSQL cases need
    JOBLEDGER_TEST_POSTGRES: ``eval "$(.ci/postgres)"`` first; without it they are skipped.
    """
    # Installed, not editable: the figures are those of the package as users get it.
    session.install(".[postgres,server]", *group("tests"), BENCH_PEER, BENCH_RUNNER_PEER)
    session.run("python", "-m", "benchmarks", *session.posargs)
