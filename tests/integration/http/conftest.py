"""A real ``jobledger serve`` (uvicorn) process on a free loopback port, over SQLite or PostgreSQL.

The server is the command line's, started as ``python -m jobledger serve``;
the tests wait for it to answer (bounded) and stop it at the end. By default
each test has a new store and its own server; a module whose tests need no new
store shares one server per backend (:func:`shared_store`, :class:`Namespaced`):
each test then names its clients, jobs and services with a prefix of its own.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from jobledger.http import Permissions, client_store_beside
from jobledger.sqlite import SQLiteRepository

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from jobledger import Repository

REPOSITORY = Path(__file__).resolve().parents[3]
#: Generous bounds for a loaded machine; nothing is timed.
STARTUP_SECONDS = 60.0


def environment() -> dict[str, str]:
    """This worktree's jobledger importable, no jobledger settings from outside."""
    kept = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("JOBLEDGER_") and name != "PYTHONPATH"
    }
    return {**kept, "PYTHONPATH": os.pathsep.join([str(REPOSITORY / "src"), str(REPOSITORY)])}


def free_port() -> int:
    """A port nobody listens on now, on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    """``jobledger serve`` in a subprocess; :meth:`start` again after :meth:`stop` to restart it."""

    def __init__(self, store: str, *options: str) -> None:
        """A server over ``store`` with more ``serve`` options, on a free port; not started."""
        self.store = store
        self.options = options
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until it answers (or fail after STARTUP_SECONDS)."""
        command = [
            sys.executable,
            "-m",
            "jobledger",
            "serve",
            "--store",
            self.store,
            "--port",
            str(self.port),
            *self.options,
        ]
        self.process = subprocess.Popen(  # noqa: S603  (our own interpreter and module)
            command, env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"jobledger serve exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/openapi.json", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        pytest.fail(f"jobledger serve did not answer within {STARTUP_SECONDS} s")

    def token(self, client_id: str, secret: str) -> str:
        """A token for the client, from POST /token with the form."""
        response = httpx.post(
            f"{self.url}/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
            },
        )
        assert 200 == response.status_code, response.text
        access: str = response.json()["access_token"]
        return access

    def bearer(self, client_id: str, secret: str) -> dict[str, str]:
        """The Authorization header of a fresh token for the client."""
        return {"Authorization": f"Bearer {self.token(client_id, secret)}"}

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL if it lingers)."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=20)
        self.process = None


def open_repository(store: str) -> Repository:
    """The ledger's repository at ``store`` (an SQLite path or a PostgreSQL URL with ?schema=)."""
    if store.startswith("postgresql://"):
        from jobledger.postgres import PostgresRepository  # noqa: PLC0415  (PostgreSQL tests only)

        conninfo, _, schema = store.partition("?schema=")
        return PostgresRepository(conninfo, schema=schema)
    return SQLiteRepository(store)


def new_store(request: pytest.FixtureRequest, directory: Path) -> str:
    """A new, empty store for ``request.param``: an SQLite file, or a PostgreSQL schema."""
    if request.param == "sqlite":
        return str(directory / "jobs.db")
    conninfo: str = request.getfixturevalue("postgres_conninfo")
    return f"{conninfo}?schema=http_{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty store: an SQLite file, or a PostgreSQL schema of its own."""
    return new_store(request, tmp_path)


class Clients:
    """Adds clients to a store, and gets their tokens from a server."""

    def __init__(self, store: str, prefix: str = "") -> None:
        """The client store beside the ledger at ``store``; client ids get ``prefix``."""
        self.store_location = store
        self.repository = open_repository(store)
        self.store = client_store_beside(self.repository)
        self.prefix = prefix

    def add(self, client_id: str, *allow: str) -> str:
        """Add a client (its id with the prefix) with these permissions; return its secret."""
        _client, secret = self.store.add(self.prefix + client_id, Permissions.parse(allow))
        return secret

    def close(self) -> None:
        """Close the stores."""
        self.store.close()
        close = getattr(self.repository, "close", None)
        if callable(close):
            close()


class Namespaced:
    """A server as one test of a module that shares it sees it: names get the test's prefix.

    ``id(name)`` is the name a test's client, job, service or request id has in
    the shared store; ``token`` and ``bearer`` take the client ids as the test
    wrote them, as :class:`Clients` adds them.
    """

    def __init__(self, server: Server, prefix: str) -> None:
        """A view of ``server`` for the test whose names start with ``prefix``."""
        self.server = server
        self.url = server.url
        self.prefix = prefix

    def id(self, name: str) -> str:
        """``name`` as this test's (its prefix first)."""
        return self.prefix + name

    def token(self, client_id: str, secret: str) -> str:
        """A token for this test's client ``client_id``."""
        return self.server.token(self.id(client_id), secret)

    def bearer(self, client_id: str, secret: str) -> dict[str, str]:
        """The Authorization header of a fresh token for this test's client ``client_id``."""
        return self.server.bearer(self.id(client_id), secret)


def unique_prefix() -> str:
    """A prefix no other test's names have."""
    return f"t{uuid.uuid4().hex[:10]}-"


@pytest.fixture
def clients(store: str) -> Iterator[Clients]:
    """The client store beside ``store``."""
    kept = Clients(store)
    yield kept
    kept.close()


@pytest.fixture
def make_server(store: str, clients: Clients) -> Iterator[Callable[..., Server]]:
    """Starts servers over ``store`` with more options; stops them at the end."""
    assert clients is not None  # the clients' tables exist before any server starts
    started: list[Server] = []

    def make(*options: str) -> Server:
        running = Server(store, "--keepalive-seconds", "0.5", *options)
        started.append(running)
        running.start()
        return running

    yield make
    for running in started:
        running.stop()


@pytest.fixture
def server(make_server: Callable[..., Server]) -> Server:
    """A running server over ``store``."""
    return make_server()


# -- one server per backend, shared by the tests that need no new store ----------------------


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def shared_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """One store per backend for every test that shares a server."""
    return new_store(request, tmp_path_factory.mktemp("shared"))


@pytest.fixture(scope="session")
def shared_server(shared_store: str) -> Iterator[Server]:
    """The server over ``shared_store``, for the whole run."""
    Clients(shared_store).close()  # the clients' tables exist before the server starts
    running = Server(shared_store, "--keepalive-seconds", "0.5")
    running.start()
    yield running
    running.stop()


@pytest.fixture
def shared_clients(shared_store: str) -> Iterator[Clients]:
    """The client store beside ``shared_store``; this test's client ids get its prefix."""
    kept = Clients(shared_store, unique_prefix())
    yield kept
    kept.close()


@pytest.fixture
def on_shared(shared_server: Server, shared_clients: Clients) -> Namespaced:
    """The shared server, seen with this test's prefix."""
    return Namespaced(shared_server, shared_clients.prefix)


@pytest.fixture
def make_shared(shared_store: str, shared_clients: Clients) -> Iterator[Callable[..., Namespaced]]:
    """Starts more servers over ``shared_store`` with more options; stops them at the end."""
    started: list[Server] = []

    def make(*options: str) -> Namespaced:
        running = Server(shared_store, "--keepalive-seconds", "0.5", *options)
        started.append(running)
        running.start()
        return Namespaced(running, shared_clients.prefix)

    yield make
    for running in started:
        running.stop()
