"""Fixtures of the PostgreSQL integration tests: a fresh schema, and a repository in it."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import psycopg
import pytest
from psycopg import sql

from jobledger.postgres import PostgresRepository

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def schema(postgres_conninfo: str) -> Iterator[str]:
    """A fresh schema name; the schema is dropped when the test ends."""
    name = f"jl_test_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(postgres_conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def repository(postgres_conninfo: str, schema: str) -> Iterator[PostgresRepository]:
    """A repository in the test's schema."""
    with PostgresRepository(postgres_conninfo, schema=schema) as opened:
        yield opened
