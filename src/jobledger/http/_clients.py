"""The service's clients: their permissions and secrets, kept beside the ledger.

A client is the seed's OpenID client: an id, a secret and a profile of
permissions. Its secret is shown once, when it is made or rotated; the store
keeps only a slow, salted scrypt hash of it. Clients live in their own tables
(``jobledger_http_clients`` and ``jobledger_http_keys``) in the ledger's own
store: the SQLite file, or the PostgreSQL schema, so that several servers over
one PostgreSQL database share their clients and their token signing key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sqlite3
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from jobledger import InvalidJobDataError, Repository, StorageError, StorageUnavailableError
from jobledger.http._errors import AuthenticationError, ClientExistsError, UnknownClientError
from jobledger.http._permissions import Permissions

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

__all__ = [
    "Client",
    "ClientStore",
    "InMemoryClientStore",
    "PostgresClientStore",
    "SQLiteClientStore",
    "client_store_beside",
    "hash_secret",
    "verify_secret",
]

# scrypt's cost: 2**15 rounds of 8 blocks, 32 MiB and some tens of milliseconds per check.
_SCRYPT_N = 2**15
_SCRYPT_R = 8
_SCRYPT_P = 1
_SCRYPT_MAXMEM = 64 * 2**20
_MAX_CLIENT_ID = 200


@attrs.frozen
class Client:
    """A client of the service, without its secret.

    Attributes:
        client_id: Its id (``--api-client-id``).
        permissions: What it may do.
        generation: Counts its secrets: rotating the secret raises it, and
            tokens issued for an older generation stop working.
        created_at: When it was added.
    """

    client_id: str
    permissions: Permissions
    generation: int
    created_at: datetime


def hash_secret(secret: str) -> str:
    """A salted scrypt hash of ``secret``, with its parameters, as one string.

    >>> (
    ...     verify_secret("s3cret", hash_secret("s3cret")),
    ...     verify_secret("guess", hash_secret("s3cret")),
    ... )
    (True, False)
    """
    salt = secrets.token_bytes(16)
    digest = _scrypt(secret, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    encoded = [base64.b64encode(part).decode("ascii") for part in (salt, digest)]
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${encoded[0]}${encoded[1]}"


def verify_secret(secret: str, hashed: str) -> bool:
    """Whether ``secret`` is the one ``hashed`` was made from (in constant time)."""
    try:
        scheme, n, r, p, salt, digest = hashed.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = _scrypt(secret, base64.b64decode(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(expected, actual)


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=32
    )


# A hash to check unknown clients' secrets against, so that an unknown id takes as long.
_DECOY = hash_secret(secrets.token_urlsafe(16))


def _check_client_id(client_id: str) -> None:
    if (
        not isinstance(client_id, str)
        or not client_id
        or len(client_id) > _MAX_CLIENT_ID
        or not client_id.isprintable()
        or client_id != client_id.strip()
        or ":" in client_id
    ):
        raise InvalidJobDataError(
            "client_id",
            "",
            f"must be 1 to {_MAX_CLIENT_ID} printable characters, no colon, "
            "no leading or trailing blank",
        )


class ClientStore(Protocol):
    """Where the service keeps its clients and its token signing key.

    Every method is safe to call from several threads, and from several
    processes (or servers) sharing the store.
    """

    def add(self, client_id: str, permissions: Permissions) -> tuple[Client, str]:
        """Add a client; return it and its new secret (shown once, never stored).

        Raises:
            ClientExistsError: the id is taken.
            InvalidJobDataError: the id is not a valid client id.
        """
        ...

    def get(self, client_id: str) -> Client:
        """The client with ``client_id``.

        Raises:
            UnknownClientError: there is none.
        """
        ...

    def clients(self) -> Sequence[Client]:
        """Every client, by id."""
        ...

    def remove(self, client_id: str) -> None:
        """Remove a client: its tokens stop working (a server notices within its recheck time).

        Raises:
            UnknownClientError: there is none.
        """
        ...

    def rotate(self, client_id: str) -> tuple[Client, str]:
        """Give a client a new secret; its older tokens stop working.

        Raises:
            UnknownClientError: there is none.
        """
        ...

    def authenticate(self, client_id: str, secret: str) -> Client:
        """The client whose id and secret these are.

        Raises:
            AuthenticationError: no such client, or not its secret (the same
                answer, after the same work, for both).
        """
        ...

    def signing_key(self) -> bytes:
        """The key that signs and checks tokens, made on first use and shared by all servers."""
        ...

    def close(self) -> None:
        """Release the store's connections."""
        ...


class InMemoryClientStore:
    """Clients kept in this process only: for tests, and a ledger that is in memory too.

    Args:
        clock: Returns the current time (timezone-aware).
    """

    def __init__(self, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._clients: dict[str, tuple[Client, str]] = {}
        self._key = secrets.token_bytes(32)

    def add(self, client_id: str, permissions: Permissions) -> tuple[Client, str]:
        """See :meth:`ClientStore.add`."""
        _check_client_id(client_id)
        secret = secrets.token_urlsafe(32)
        client = Client(client_id, permissions, 1, self._clock())
        with self._lock:
            if client_id in self._clients:
                raise ClientExistsError(client_id)
            self._clients[client_id] = (client, hash_secret(secret))
        return client, secret

    def get(self, client_id: str) -> Client:
        """See :meth:`ClientStore.get`."""
        with self._lock:
            if client_id not in self._clients:
                raise UnknownClientError(client_id)
            return self._clients[client_id][0]

    def clients(self) -> Sequence[Client]:
        """See :meth:`ClientStore.clients`."""
        with self._lock:
            return tuple(self._clients[key][0] for key in sorted(self._clients))

    def remove(self, client_id: str) -> None:
        """See :meth:`ClientStore.remove`."""
        with self._lock:
            if self._clients.pop(client_id, None) is None:
                raise UnknownClientError(client_id)

    def rotate(self, client_id: str) -> tuple[Client, str]:
        """See :meth:`ClientStore.rotate`."""
        secret = secrets.token_urlsafe(32)
        with self._lock:
            if client_id not in self._clients:
                raise UnknownClientError(client_id)
            old = self._clients[client_id][0]
            client = attrs.evolve(old, generation=old.generation + 1)
            self._clients[client_id] = (client, hash_secret(secret))
        return client, secret

    def authenticate(self, client_id: str, secret: str) -> Client:
        """See :meth:`ClientStore.authenticate`."""
        with self._lock:
            client, hashed = self._clients.get(client_id, (None, _DECOY))
        if not verify_secret(secret, hashed) or client is None:
            raise AuthenticationError("unknown client or wrong secret")
        return client

    def signing_key(self) -> bytes:
        """See :meth:`ClientStore.signing_key`."""
        return self._key

    def close(self) -> None:
        """Nothing to release."""


_ROW = "client_id, permissions, secret_hash, generation, created_at"


def _client(row: Sequence[Any]) -> Client:
    client_id, permissions, _hash, generation, created_at = row
    return Client(
        client_id=client_id,
        permissions=Permissions.parse([permissions]),
        generation=int(generation),
        created_at=datetime.fromisoformat(created_at),
    )


class _SQLClientStore:
    """The logic of both stores; the subclasses give a connection and the table names."""

    _clients_table: str
    _keys_table: str
    _clock: Callable[[], datetime]

    def _transaction(self) -> Any:  # noqa: ANN401  (a context manager giving a cursor-like object)
        raise NotImplementedError

    def _reading(self) -> Any:  # noqa: ANN401  (a context manager giving a cursor-like object)
        """A transaction that only reads (by default the same as a write's)."""
        return self._transaction()

    def _sql(self, text: str) -> str:
        return text.format(clients=self._clients_table, keys=self._keys_table)

    def _fetch(self, text: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._reading() as run:
            return list(run(self._sql(text), params))

    def _row(self, client_id: str) -> Any:  # noqa: ANN401  (a database row)
        rows = self._fetch(f"SELECT {_ROW} FROM {{clients}} WHERE client_id = ?", (client_id,))  # noqa: S608  (constant names)
        if not rows:
            raise UnknownClientError(client_id)
        return rows[0]

    def add(self, client_id: str, permissions: Permissions) -> tuple[Client, str]:
        _check_client_id(client_id)
        secret = secrets.token_urlsafe(32)
        client = Client(client_id, permissions, 1, self._clock())
        hashed = hash_secret(secret)  # slow: before the transaction
        with self._transaction() as run:
            inserted = list(
                run(
                    self._sql(
                        f"INSERT INTO {{clients}} ({_ROW}) VALUES (?, ?, ?, ?, ?) "  # noqa: S608  (constant names)
                        "ON CONFLICT (client_id) DO NOTHING RETURNING client_id"
                    ),
                    (
                        client_id,
                        str(permissions),
                        hashed,
                        1,
                        client.created_at.isoformat(),
                    ),
                )
            )
        if not inserted:
            raise ClientExistsError(client_id)
        return client, secret

    def get(self, client_id: str) -> Client:
        return _client(self._row(client_id))

    def clients(self) -> Sequence[Client]:
        rows = self._fetch(f"SELECT {_ROW} FROM {{clients}} ORDER BY client_id")  # noqa: S608  (constant names)
        return tuple(map(_client, rows))

    def remove(self, client_id: str) -> None:
        with self._transaction() as run:
            gone = list(
                run(
                    self._sql("DELETE FROM {clients} WHERE client_id = ? RETURNING client_id"),
                    (client_id,),
                )
            )
        if not gone:
            raise UnknownClientError(client_id)

    def rotate(self, client_id: str) -> tuple[Client, str]:
        secret = secrets.token_urlsafe(32)
        hashed = hash_secret(secret)  # slow: before the transaction
        with self._transaction() as run:
            rows = list(
                run(
                    self._sql(
                        "UPDATE {clients} SET secret_hash = ?, generation = generation + 1 "  # noqa: S608  (constant names)
                        f"WHERE client_id = ? RETURNING {_ROW}"
                    ),
                    (hashed, client_id),
                )
            )
        if not rows:
            raise UnknownClientError(client_id)
        return _client(rows[0]), secret

    def authenticate(self, client_id: str, secret: str) -> Client:
        rows = self._fetch(f"SELECT {_ROW} FROM {{clients}} WHERE client_id = ?", (client_id,))  # noqa: S608  (constant names)
        hashed = rows[0][2] if rows else _DECOY
        if not verify_secret(secret, hashed) or not rows:
            raise AuthenticationError("unknown client or wrong secret")
        return _client(rows[0])

    def signing_key(self) -> bytes:
        with self._transaction() as run:
            list(
                run(
                    self._sql(
                        "INSERT INTO {keys} (name, key) VALUES ('tokens', ?) "
                        "ON CONFLICT (name) DO NOTHING"
                    ),
                    (base64.b64encode(secrets.token_bytes(32)).decode("ascii"),),
                )
            )
            rows = list(run(self._sql("SELECT key FROM {keys} WHERE name = 'tokens'"), ()))
        return base64.b64decode(rows[0][0])


_TABLES = (
    (
        "CREATE TABLE IF NOT EXISTS {clients} (client_id TEXT PRIMARY KEY,"
        " permissions TEXT NOT NULL, secret_hash TEXT NOT NULL, generation INTEGER NOT NULL,"
        " created_at TEXT NOT NULL)"
    ),
    "CREATE TABLE IF NOT EXISTS {keys} (name TEXT PRIMARY KEY, key TEXT NOT NULL)",
)


class SQLiteClientStore(_SQLClientStore):
    """Clients kept in an SQLite file, normally the ledger's own.

    Args:
        path: The SQLite file; open the ledger's repository on it first, so
            that the file is a jobledger database before these tables join it.
        clock: Returns the current time (timezone-aware).
        busy_timeout: Seconds to wait for other writers.

    Raises:
        StorageError: the file cannot be opened.
    """

    def __init__(
        self,
        path: str,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        busy_timeout: float = 5.0,
    ) -> None:
        self._path = str(path)
        self._clock = clock
        self._clients_table = "jobledger_http_clients"
        self._keys_table = "jobledger_http_keys"
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(
                self._path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            for statement in _TABLES:
                self._conn.execute(self._sql(statement))
        except sqlite3.Error as err:
            raise StorageError(self._path, f"cannot keep clients: {err}") from err

    def _transaction(self) -> Any:  # noqa: ANN401  (a context manager)
        return _SQLiteTransaction(self._conn, self._lock, self._path)

    def _reading(self) -> Any:  # noqa: ANN401  (a context manager)
        # WAL readers take no lock that writers wait for: no BEGIN IMMEDIATE for a read.
        return _SQLiteTransaction(self._conn, self._lock, self._path, write=False)

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._conn.close()


class _SQLiteTransaction:
    """One transaction on the store's connection, under its lock (a write's, or one statement's)."""

    def __init__(
        self, conn: sqlite3.Connection, lock: threading.Lock, path: str, *, write: bool = True
    ) -> None:
        self._conn = conn
        self._lock = lock
        self._path = path
        self._write = write

    def __enter__(self) -> Callable[[str, tuple[Any, ...]], Iterator[Any]]:
        self._lock.acquire()
        try:
            if self._write:
                self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            self._lock.release()
            raise StorageError(self._path, f"cannot keep clients: {err}") from err

        def run(text: str, params: tuple[Any, ...]) -> Iterator[Any]:
            try:
                return iter(self._conn.execute(text, params).fetchall())
            except sqlite3.Error as err:
                raise StorageError(self._path, f"cannot keep clients: {err}") from err

        return run

    def __exit__(self, kind: object, error: object, _traceback: object) -> None:
        try:
            if self._write:
                self._conn.execute("COMMIT" if error is None else "ROLLBACK")
        except sqlite3.Error as err:
            raise StorageError(self._path, f"cannot keep clients: {err}") from err
        finally:
            self._lock.release()


class PostgresClientStore(_SQLClientStore):
    """Clients kept in a PostgreSQL schema, normally the ledger's own.

    Args:
        pool: A psycopg connection pool (the ledger repository's ``pool``).
        schema: The schema to keep the tables in (the repository's ``schema``).
        clock: Returns the current time (timezone-aware).

    Raises:
        StorageError: the tables cannot be made.
    """

    def __init__(
        self,
        pool: Any,  # noqa: ANN401  (a psycopg_pool.ConnectionPool; psycopg is an optional extra)
        schema: str,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        from psycopg import sql  # noqa: PLC0415  (PostgreSQL support is optional)

        self._pool = pool
        self._clock = clock
        self._schema = schema
        with pool.connection() as conn:
            self._clients_table = sql.Identifier(schema, "jobledger_http_clients").as_string(conn)
            self._keys_table = sql.Identifier(schema, "jobledger_http_keys").as_string(conn)
        lock = int.from_bytes(
            hashlib.sha256(f"jobledger http {schema}".encode()).digest()[:8], "big", signed=True
        )
        with self._transaction() as run:
            list(run("SELECT pg_advisory_xact_lock(?)", (lock,)))
            for statement in _TABLES:
                list(run(self._sql(statement), ()))

    def _transaction(self) -> Any:  # noqa: ANN401  (a context manager)
        return _PostgresTransaction(self._pool, self._schema)

    def close(self) -> None:
        """Nothing to release: the connections are the pool's."""


class _PostgresTransaction:
    """One transaction on a connection borrowed from the pool."""

    def __init__(self, pool: Any, schema: str) -> None:  # noqa: ANN401  (a psycopg pool)
        self._pool = pool
        self._schema = schema
        self._borrowed: Any = None
        self._transaction: Any = None

    def __enter__(self) -> Callable[[str, tuple[Any, ...]], Iterator[Any]]:
        import psycopg  # noqa: PLC0415  (PostgreSQL support is optional)

        try:
            self._borrowed = self._pool.connection()
            conn = self._borrowed.__enter__()
            self._transaction = conn.transaction()
            self._transaction.__enter__()
        except psycopg.Error as err:
            raise StorageUnavailableError(
                f"schema {self._schema}", f"cannot keep clients: {err}"
            ) from err

        def run(text: str, params: tuple[Any, ...]) -> Iterator[Any]:
            try:
                cursor = conn.execute(text.replace("?", "%s"), params)
                return iter(cursor.fetchall() if cursor.description else ())
            except psycopg.Error as err:
                raise StorageError(f"schema {self._schema}", f"cannot keep clients: {err}") from err

        return run

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        try:
            self._transaction.__exit__(kind, error, traceback)
        finally:
            self._borrowed.__exit__(kind, error, traceback)


def client_store_beside(repository: Repository) -> ClientStore:
    """The client store in the same store as ``repository`` (its SQLite file or schema).

    Raises:
        TypeError: ``repository`` is neither jobledger's SQLite nor its PostgreSQL repository.
        StorageError: the client tables cannot be made.
    """
    from jobledger.sqlite import SQLiteRepository  # noqa: PLC0415  (imported where needed)

    if isinstance(repository, SQLiteRepository):
        return SQLiteClientStore(repository.path)
    pool = getattr(repository, "pool", None)
    schema = getattr(repository, "schema", None)
    if pool is not None and isinstance(schema, str):
        return PostgresClientStore(pool, schema)
    msg = (
        f"clients can be kept beside an SQLite or PostgreSQL repository, not a "
        f"{type(repository).__name__}; give the service a ClientStore of its own"
    )
    raise TypeError(msg)
