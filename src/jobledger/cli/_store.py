"""Where the command line keeps the ledger: ``--store`` addresses, and opening them.

A store is an SQLite file (a plain path, or ``sqlite:///PATH``) or a
PostgreSQL database (``postgresql://...`` with an optional ``schema`` query
parameter, or a libpq ``key=value`` connection string with an optional
``schema=NAME``). The default is the SQLite file ``jobledger.db`` in the
working directory. A store's password is never shown: :func:`masked` is the
one place that hides it.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import attrs

from jobledger import StorageError
from jobledger.cli._errors import StoreSpecError, StoreUnreachableError
from jobledger.cli._password import masked
from jobledger.sqlite import SQLiteRepository

if TYPE_CHECKING:
    from jobledger import Repository

__all__ = [
    "DEFAULT_STORE",
    "POSTGRES_TIMEOUT",
    "STORE_ENV",
    "StoreAddress",
    "is_conninfo",
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
# A libpq key=value connection string starts with one of libpq's keywords.
_CONNINFO_KEYWORDS = frozenset(
    {
        "application_name",
        "channel_binding",
        "client_encoding",
        "connect_timeout",
        "dbname",
        "gssencmode",
        "host",
        "hostaddr",
        "keepalives",
        "load_balance_hosts",
        "options",
        "passfile",
        "password",
        "port",
        "require_auth",
        "service",
        "sslcert",
        "sslkey",
        "sslmode",
        "sslrootcert",
        "target_session_attrs",
        "user",
    }
)
_CONNINFO_START = re.compile(r"\s*([A-Za-z_]+)\s*=")
# schema=NAME in a key=value string: jobledger's, not libpq's, so it is taken out.
_CONNINFO_SCHEMA = re.compile(r"(?:^|\s)schema\s*=\s*('(?:[^'\\]|\\.)*'?|[^\s']*)")


def is_conninfo(text: str) -> bool:
    """Whether ``text`` is a libpq ``key=value`` connection string (``host=db dbname=jobs``).

    >>> is_conninfo("host=db password=s3cret"), is_conninfo("jobs.db"), is_conninfo("a=b.db")
    (True, False, False)
    """
    start = _CONNINFO_START.match(text)
    return start is not None and start[1].lower() in _CONNINFO_KEYWORDS


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

    given: str = attrs.field(repr=lambda text: repr(masked(text)))
    kind: Literal["sqlite", "postgres"]
    target: str = attrs.field(repr=lambda text: repr(masked(text)))
    schema: str | None = None

    @classmethod
    def parse(cls, text: str) -> StoreAddress:
        """Read a ``--store`` value.

        Raises:
            StoreSpecError: it is empty, or a URL of a kind the command line does
                not know, or a URL that cannot be read.
        """
        if not text.strip():
            raise StoreSpecError(text, "it is empty")
        if is_conninfo(text):
            schemas = [found[1] for found in _CONNINFO_SCHEMA.finditer(text)]
            target = " ".join(_CONNINFO_SCHEMA.sub(" ", text).split())
            schema = _unquoted(schemas[-1]) if schemas else None
            return cls(text, "postgres", target, schema or None)
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
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018  (reading it checks it)
        except ValueError as err:
            raise StoreSpecError(text, f"it is not a URL that can be read ({err})") from None
        query = parse_qsl(parts.query, keep_blank_values=True)
        schemas = [value for key, value in query if key == "schema"]
        rest = [(key, value) for key, value in query if key != "schema"]
        target = urlunsplit(parts._replace(query=urlencode(rest)))
        return cls(text, "postgres", target, schemas[-1] if schemas else None)

    @property
    def shown(self) -> str:
        """The address as given, its password hidden: what messages and hints repeat.

        >>> StoreAddress.parse("postgresql://app:secret@db/jobs").shown
        'postgresql://app:***@db/jobs'
        """
        return masked(self.given)

    @property
    def path(self) -> Path:
        """The SQLite file's absolute path (only for an SQLite store)."""
        return Path(self.target).expanduser().absolute()

    def describe(self) -> str:
        """The store for people: the SQLite file's absolute path, or the URI without password.

        >>> StoreAddress.parse("postgresql://app:secret@db/jobs").describe()
        'PostgreSQL postgresql://app:***@db/jobs'
        """
        if self.kind == "sqlite":
            return f"SQLite {self.path}"
        suffix = f" (schema {self.schema})" if self.schema else ""
        return f"PostgreSQL {masked(self.target)}{suffix}"


def _unquoted(value: str) -> str:
    if value.startswith("'"):
        return re.sub(r"\\(.)", r"\1", value[1:].removesuffix("'"))
    return value


def open_store(address: StoreAddress, *, create: bool = True) -> Repository:
    """Open the repository ``address`` names, creating an SQLite file or schema if new.

    Args:
        address: The store.
        create: Whether a new SQLite file may be made; when ``False`` (the
            commands that only read or steer existing jobs), a missing file is
            an error.

    Raises:
        StoreUnreachableError: the store cannot be opened: the file's folder
            does not exist, the file does not exist and ``create`` is false,
            it is not a jobledger database, the server does not answer, or
            PostgreSQL support is not installed.
        StoreSpecError: the address is not one a store can have.
    """
    if address.kind == "sqlite":
        if not create and not address.path.is_file():
            reason = (
                f"there is no store at {address.path} (this command never creates one; "
                "`jobledger invoke` or `jobledger demo` does)"
            )
            raise StoreUnreachableError(address.shown, reason)
        try:
            return SQLiteRepository(address.path)
        except StorageError as err:
            raise StoreUnreachableError(address.shown, _reason(err)) from err
        except ValueError as err:
            raise StoreSpecError(address.shown, str(err)) from err
    if not create:
        _check_postgres_ledger(address)
    return _open_postgres(address)


def _check_postgres_ledger(address: StoreAddress) -> None:
    """Refuse a PostgreSQL store that holds no ledger: a command that only reads makes none.

    Opening a :class:`~jobledger.postgres.PostgresRepository` creates its schema
    and tables; this looks first, with one plain connection.

    Raises:
        StoreUnreachableError: the schema has no jobledger tables, or the server
            cannot be asked.
    """
    try:
        psycopg = importlib.import_module("psycopg")
    except ImportError:
        return  # _open_postgres says what is missing
    try:
        with psycopg.connect(address.target, connect_timeout=int(POSTGRES_TIMEOUT)) as conn:
            row = conn.execute(
                "SELECT to_regclass(quote_ident(coalesce(%s::text, current_schema())) "
                "|| '.jobledger_jobs') IS NOT NULL",
                (address.schema,),
            ).fetchone()
    except psycopg.Error as err:
        raise StoreUnreachableError(address.shown, masked(str(err).strip())) from err
    if row is None or not row[0]:
        where = f"schema {address.schema!r}" if address.schema else "its default schema"
        reason = (
            f"the database holds no jobledger ledger in {where} (this command never "
            "creates one; `jobledger invoke` or `jobledger demo` does)"
        )
        raise StoreUnreachableError(address.shown, reason)


def _open_postgres(address: StoreAddress) -> Repository:
    try:
        # Imported by name: PostgreSQL support is an optional extra.
        postgres = importlib.import_module("jobledger.postgres")
    except ImportError as err:
        reason = f'PostgreSQL support is not installed ({err}); pip install "jobledger[postgres]"'
        raise StoreUnreachableError(address.shown, reason) from err
    try:
        repository: Repository = postgres.PostgresRepository(
            address.target, schema=address.schema, timeout=POSTGRES_TIMEOUT
        )
    except StorageError as err:
        raise StoreUnreachableError(address.shown, _reason(err)) from err
    except ValueError as err:
        raise StoreSpecError(address.shown, masked(str(err))) from err
    return repository


def _reason(error: StorageError) -> str:
    # The error's message starts with the location, which the caller names already.
    text = str(error)
    location = getattr(error, "location", "")
    if location and text.startswith(f"{location}: "):
        text = text[len(location) + 2 :]
    return masked(" ".join(text.split()))
