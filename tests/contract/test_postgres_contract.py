"""The PostgreSQL repository keeps every rule of the repository contract, on a real server."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import ConnectionPool

from jobledger.postgres import PostgresRepository
from jobledger.testing.contract import AtomicBatchesContract

if TYPE_CHECKING:
    from pathlib import Path

    from jobledger import Repository

pytestmark = pytest.mark.postgres


class TestPostgresRepositoryContract(AtomicBatchesContract):
    """The contract suite over PostgresRepository, each repository in a schema of its own."""

    conninfo = ""

    @pytest.fixture(autouse=True)
    def _server(self, postgres_conninfo: str) -> None:
        """Point the suite at the test server."""
        self.conninfo = postgres_conninfo

    def make_repository(self, directory: Path) -> PostgresRepository:  # noqa: ARG002  (nothing on disk)
        """Return a repository in a new schema, dropped again by dispose_repository."""
        return PostgresRepository(self.conninfo, schema=f"jl_contract_{uuid.uuid4().hex[:12]}")

    def dispose_repository(self, repository: Repository) -> None:
        """Close the repository and drop its schema."""
        assert isinstance(repository, PostgresRepository)
        repository.close()
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                    sql.Identifier(repository.schema)
                )
            )


class TestPostgresRepositoryOnATransactionalPoolContract(TestPostgresRepositoryContract):
    """The contract suite over an application's own pool whose connections are not autocommit.

    Such connections take the repository's plain transaction path, not the
    single statement in autocommit mode its own pool uses, so this proves that
    path keeps the contract.
    """

    def make_repository(self, directory: Path) -> PostgresRepository:  # noqa: ARG002  (nothing on disk)
        """Return a repository on a pool of non-autocommit connections, in a new schema."""
        pool: ConnectionPool = ConnectionPool(
            self.conninfo, min_size=1, max_size=4, kwargs={"autocommit": False}, open=True
        )
        return PostgresRepository(pool=pool, schema=f"jl_contract_{uuid.uuid4().hex[:12]}")

    def dispose_repository(self, repository: Repository) -> None:
        """Close the application's pool too (the repository never closes a pool it was given)."""
        assert isinstance(repository, PostgresRepository)
        super().dispose_repository(repository)
        repository.pool.close()


class TestPostgresRepositoryOnAnIsolationPoolContract(
    TestPostgresRepositoryOnATransactionalPoolContract
):
    """The contract suite over an autocommit pool whose connections set an isolation level.

    Such connections send each save between the ``BEGIN`` that sets the level
    and ``COMMIT``, in pipeline mode, so this proves that path keeps the contract.
    """

    def make_repository(self, directory: Path) -> PostgresRepository:  # noqa: ARG002  (nothing on disk)
        """Return a repository on a pool of autocommit connections at READ COMMITTED."""

        def read_committed(conn: psycopg.Connection[Any]) -> None:
            conn.isolation_level = psycopg.IsolationLevel.READ_COMMITTED

        pool: ConnectionPool = ConnectionPool(
            self.conninfo,
            min_size=1,
            max_size=4,
            kwargs={"autocommit": True},
            configure=read_committed,
            open=True,
        )
        return PostgresRepository(pool=pool, schema=f"jl_contract_{uuid.uuid4().hex[:12]}")
