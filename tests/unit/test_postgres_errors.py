"""Driver errors that have no meaning for the ledger become the storage errors of jobledger."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors as pg_errors
from psycopg_pool import PoolClosed, PoolTimeout

from jobledger import JobledgerError, StorageError, StorageTimeoutError, StorageUnavailableError
from jobledger._adapters.postgres import refused_settings, translate_error

LOCATION = "PostgreSQL database 'jobs' on db:5432, schema 'ledger'"


class TestTranslateError:
    """translate_error, the boundary's map from psycopg errors to jobledger errors."""

    @pytest.mark.parametrize(
        "error",
        [
            PoolTimeout("couldn't get a connection after 30.00 sec"),
            psycopg.OperationalError("connection refused"),
            pg_errors.ConnectionFailure("connection failure"),
            pg_errors.AdminShutdown("terminating connection due to administrator command"),
            pg_errors.CannotConnectNow("the database system is starting up"),
        ],
    )
    def test_connection_failures_become_storage_unavailable(self, error: psycopg.Error) -> None:
        """No connection, a refused or broken one, or a server going down: unreachable."""
        translated = translate_error(error, LOCATION)

        assert StorageUnavailableError is type(translated)
        assert isinstance(translated, ConnectionError)

    @pytest.mark.parametrize(
        "error",
        [
            pg_errors.LockNotAvailable("canceling statement due to lock timeout"),
            pg_errors.QueryCanceled("canceling statement due to statement timeout"),
        ],
    )
    def test_lock_and_statement_timeouts_become_storage_timeouts(
        self, error: psycopg.Error
    ) -> None:
        """A lock_timeout or statement_timeout that expired is a StorageTimeoutError."""
        translated = translate_error(error, LOCATION)

        assert StorageTimeoutError is type(translated)
        assert isinstance(translated, TimeoutError)

    @pytest.mark.parametrize(
        "error",
        [
            pg_errors.SerializationFailure("could not serialize access"),
            pg_errors.DeadlockDetected("deadlock detected"),
        ],
    )
    def test_collisions_that_outlive_the_retries_become_storage_errors(
        self, error: psycopg.Error
    ) -> None:
        """A serialization failure or deadlock left after the retries says to retry."""
        translated = translate_error(error, LOCATION)

        assert StorageError is type(translated)
        assert "retry" in str(translated)

    @pytest.mark.parametrize(
        "error",
        [
            pg_errors.InsufficientPrivilege("permission denied for schema ledger"),
            pg_errors.UndefinedTable('relation "jobledger_jobs" does not exist'),
            pg_errors.UniqueViolation("duplicate key value violates unique constraint"),
            psycopg.InterfaceError("the connection is lost"),
        ],
    )
    def test_every_other_driver_error_becomes_a_storage_error(self, error: psycopg.Error) -> None:
        """Any other psycopg error is a plain StorageError that quotes the driver's message."""
        translated = translate_error(error, LOCATION)

        assert StorageError is type(translated)
        assert str(error) in str(translated)

    def test_a_closed_pool_says_the_repository_is_closed(self) -> None:
        """Using a closed repository's pool raises a StorageError that says so."""
        translated = translate_error(PoolClosed("the pool is closed"), LOCATION)

        assert (StorageError, f"{LOCATION}: the repository is closed") == (
            type(translated),
            str(translated),
        )

    def test_the_translation_names_the_database_and_is_a_jobledger_error(self) -> None:
        """Every translated error is a JobledgerError whose location names server and schema."""
        translated = translate_error(psycopg.OperationalError("refused"), LOCATION)

        assert isinstance(translated, JobledgerError)
        assert LOCATION == translated.location


class TestRefusedSettings:
    """refused_settings, which tells settings the server refuses from a server not there."""

    @pytest.mark.parametrize(
        "message",
        [
            (
                'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
                'FATAL:  password authentication failed for user "app"'
            ),
            'connection failed: FATAL:  no pg_hba.conf entry for host "10.0.0.1", user "app"',
            'connection failed: FATAL:  database "nothing" does not exist',
        ],
    )
    def test_fatal_startup_refusals_are_settings(self, message: str) -> None:
        """A wrong password, a missing pg_hba entry or database: the settings are refused."""
        assert refused_settings(psycopg.OperationalError(message))

    @pytest.mark.parametrize(
        "error",
        [
            psycopg.OperationalError("connection failed: Connection refused"),
            psycopg.OperationalError(
                "connection failed: FATAL:  the database system is starting up"
            ),
            psycopg.OperationalError("connection failed: FATAL:  sorry, too many clients already"),
            pg_errors.LockNotAvailable("canceling statement due to lock timeout"),
        ],
    )
    def test_a_server_away_starting_or_full_is_not_settings(self, error: psycopg.Error) -> None:
        """A server that is down, starting or full may take the settings later: not refused."""
        assert not refused_settings(error)

    def test_a_conninfo_that_does_not_parse_is_settings(self) -> None:
        """The driver's ProgrammingError for a malformed conninfo is a refusal of the settings."""
        assert refused_settings(psycopg.ProgrammingError('missing "=" after "x"'))
