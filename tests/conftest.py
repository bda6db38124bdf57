"""Fixtures shared by every test folder.

PostgreSQL tests take the ``postgres_conninfo`` fixture. It reads the server to use
from ``JOBLEDGER_TEST_POSTGRES`` (start one with ``eval "$(.ci/postgres)"``). Without
it they are skipped on a developer's machine and fail in CI (``CI`` set), where a
missing server must never pass unnoticed.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

POSTGRES_ENV = "JOBLEDGER_TEST_POSTGRES"


def running_in_ci() -> bool:
    """Return whether the CI environment variable is set to a true value."""
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the PostgreSQL server ``postgres``, for ``-m "not postgres"``."""
    for item in items:
        if "postgres_conninfo" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session", autouse=True)
def importable_tests(pytestconfig: pytest.Config) -> Iterator[None]:
    """Put the project's root on the import path for the whole run.

    Worker processes started with ``spawn`` (process pools, consumers, racers)
    inherit it, and unpickle the test functions they run by their module's name
    (``tests.integration...``). ``python -m pytest`` adds the working directory
    to the path; the ``pytest`` command (which nox runs) does not.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(pytestconfig.rootpath))
        yield


@pytest.fixture(scope="session")
def postgres_conninfo() -> str:
    """Return the conninfo of the test PostgreSQL server, after proving it answers.

    Skips when ``JOBLEDGER_TEST_POSTGRES`` is unset, unless in CI, where it fails.
    Fails when the variable is set but the server does not answer.
    """
    conninfo = os.environ.get(POSTGRES_ENV, "").strip()
    if not conninfo:
        reason = f'{POSTGRES_ENV} is not set; start a server with: eval "$(.ci/postgres)"'
        if running_in_ci():
            pytest.fail(f"PostgreSQL is required in CI: {reason}", pytrace=False)
        pytest.skip(reason)

    import psycopg  # noqa: PLC0415 - only PostgreSQL tests need the driver

    try:
        with psycopg.connect(conninfo, connect_timeout=10) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as err:
        pytest.fail(f"{POSTGRES_ENV}={conninfo!r} does not answer: {err}", pytrace=False)
    return conninfo
