"""Where the command line keeps the ledger: ``--store`` addresses, and opening them.

A store is an SQLite file (a plain path, or ``sqlite:///PATH``) or a
PostgreSQL database (``postgresql://...``, with an optional ``schema`` query
parameter). The default is the SQLite file ``jobledger.db`` in the working
directory.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import attrs

from jobledger import StorageError
from jobledger.cli._errors import StoreSpecError, StoreUnreachableError
from jobledger.sqlite import SQLiteRepository

if TYPE_CHECKING:
    from jobledger import Repository

__all__ = [
    "DEFAULT_STORE",
    "POSTGRES_TIMEOUT",
    "STORE_ENV",
    "StoreAddress",
    "open_store",
]

#: The store used when neither ``--store`` nor ``JOBLEDGER_STORE`` names one.
DEFAULT_STORE = "jobledger.db"
#: The environment variable that names the store.
STORE_ENV = "JOBLEDGER_STORE"
#: Seconds to wait for a PostgreSQL server before saying it cannot be reached.
POSTGRES_TIMEOUT = 10.0

_SQLITE_PREFIX = "sqlite:///"
_POSTGRES_SCHEMES = ("postgresql", "postgres")


@attrs.frozen
class StoreAddress:
    """A parsed ``--store`` value.

    Attributes:
        given: The value as given.
        kind: ``"sqlite"`` or ``"postgres"``.
        target: The SQLite file's path, or the PostgreSQL connection URI
            (without the ``schema`` parameter).
        schema: The PostgreSQL schema, if the address names one.

    >>> StoreAddress.parse("sqlite:///var/jobs.db").target
    'var/jobs.db'
    >>> StoreAddress.parse("sqlite:////var/jobs.db").target
    '/var/jobs.db'
    >>> address = StoreAddress.parse("postgresql://app@db/jobs?schema=ledger&sslmode=require")
    >>> address.kind, address.target, address.schema
    ('postgres', 'postgresql://app@db/jobs?sslmode=require', 'ledger')
    """

    given: str
    kind: Literal["sqlite", "postgres"]
    target: str
    schema: str | None = None

    @classmethod
    def parse(cls, text: str) -> StoreAddress:
        """Read a ``--store`` value.

        Raises:
            StoreSpecError: it is empty, or a URL of a kind the command line does not know.
        """
        if not text.strip():
            raise StoreSpecError(text, "it is empty")
        if text.startswith(_SQLITE_PREFIX):
            path = text[len(_SQLITE_PREFIX) :]
            if not path:
                raise StoreSpecError(text, "it names no file")
            return cls(text, "sqlite", path)
        scheme, separator, _ = text.partition("://")
        if not separator:
            return cls(text, "sqlite", text)
        if scheme not in _POSTGRES_SCHEMES:
            raise StoreSpecError(text, f"{scheme}:// is not a kind of store jobledger knows")
        parts = urlsplit(text)
        query = parse_qsl(parts.query, keep_blank_values=True)
        schemas = [value for key, value in query if key == "schema"]
        rest = [(key, value) for key, value in query if key != "schema"]
        target = urlunsplit(parts._replace(query=urlencode(rest)))
        return cls(text, "postgres", target, schemas[-1] if schemas else None)

    def describe(self) -> str:
        """The store for people: the SQLite file's absolute path, or the URI without password.

        >>> StoreAddress.parse("postgresql://app:secret@db/jobs").describe()
        'PostgreSQL postgresql://app:***@db/jobs'
        """
        if self.kind == "sqlite":
            return f"SQLite {Path(self.target).expanduser().absolute()}"
        parts = urlsplit(self.target)
        netloc = parts.netloc
        if parts.password is not None:
            user, _, host = netloc.rpartition("@")
            netloc = f"{user.partition(':')[0]}:***@{host}"
        shown = urlunsplit(parts._replace(netloc=netloc))
        suffix = f" (schema {self.schema})" if self.schema else ""
        return f"PostgreSQL {shown}{suffix}"


def open_store(address: StoreAddress) -> Repository:
    """Open the repository ``address`` names, creating an SQLite file or schema if new.

    Raises:
        StoreUnreachableError: the store cannot be opened: the file's folder
            does not exist, it is not a jobledger database, the server does
            not answer, or PostgreSQL support is not installed.
        StoreSpecError: the address is not one a store can have.
    """
    if address.kind == "sqlite":
        try:
            return SQLiteRepository(Path(address.target).expanduser())
        except StorageError as err:
            raise StoreUnreachableError(address.given, _reason(err)) from err
        except ValueError as err:
            raise StoreSpecError(address.given, str(err)) from err
    return _open_postgres(address)


def _open_postgres(address: StoreAddress) -> Repository:
    try:
        # Imported by name: PostgreSQL support is an optional extra.
        postgres = importlib.import_module("jobledger.postgres")
    except ImportError as err:
        reason = f'PostgreSQL support is not installed ({err}); pip install "jobledger[postgres]"'
        raise StoreUnreachableError(address.given, reason) from err
    try:
        repository: Repository = postgres.PostgresRepository(
            address.target, schema=address.schema, timeout=POSTGRES_TIMEOUT
        )
    except StorageError as err:
        raise StoreUnreachableError(address.given, _reason(err)) from err
    except ValueError as err:
        raise StoreSpecError(address.given, str(err)) from err
    return repository


def _reason(error: StorageError) -> str:
    # The error's message starts with the location, which the caller names already.
    text = str(error)
    location = getattr(error, "location", "")
    if location and text.startswith(f"{location}: "):
        text = text[len(location) + 2 :]
    return " ".join(text.split())
