"""The jobs service over HTTP against the library called directly: the cases of issue 16.

One workload on every side: each of C concurrent clients (threads) runs jobs of
one start, U updates (each sent with the ETag the previous command returned,
``If-Match`` over HTTP) and one complete. Directly, the threads share one
:class:`~jobledger.Jobs`; through the service, each thread has a client of its
own (its own connection) talking to a real ``python -m jobledger serve``
process on a free loopback port, started and stopped here: either
:class:`~jobledger.http.JobsClient` (httpx), or :class:`RawClient`, a lean
client on the standard library's ``http.client`` that sends the same requests
(what a service written in any language pays, not what our client library
costs). Every command's latency is taken on the caller's side.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = [
    "KINDS",
    "Ledger",
    "RawClient",
    "Round",
    "Server",
    "Version",
    "add_client",
    "client_for",
    "free_port",
    "http_floor",
    "raw_client_for",
    "run_round",
    "serve",
]

#: The commands of the workload, in the order a job sends them.
KINDS = ("start", "update", "complete")

#: Seconds to wait for the service to listen, and then for it to stop.
START_SECONDS = 60.0
STOP_SECONDS = 15.0

_CLIENT_ID = "bench"

#: Seconds a :class:`RawClient`'s connection may sit unused before it is opened anew: under
#: uvicorn's keep-alive timeout (5 s), so that a request never goes to a connection the server
#: is closing (sent, it would fail with a broken pipe; resent, it might be carried out twice).
IDLE_SECONDS = 2.0


class Versioned(Protocol):
    """What the workload reads of a command's answer: the job's id and its new ETag."""

    @property
    def id(self) -> str: ...

    @property
    def etag(self) -> str: ...


class Ledger(Protocol):
    """What the workload calls: ``Jobs``, ``JobsClient`` and :class:`RawClient`."""

    def start(self, *, service: str, entity: str, type: str, state: object = None) -> Versioned:  # noqa: D102
        ...

    def update(self, job_id: str, *, etag: str, state_update: object) -> Versioned:  # noqa: D102
        ...

    def complete(self, job_id: str, *, etag: str, state_update: object) -> Versioned:  # noqa: D102
        ...


class Round:
    """The latencies (seconds, by kind of command) and the wall time of one timed round."""

    def __init__(self) -> None:
        """An empty round."""
        self.latencies: dict[str, list[float]] = {kind: [] for kind in KINDS}
        self.seconds = 0.0
        #: CPU seconds of the calling process (every thread) over the timed part.
        self.cpu = 0.0
        #: CPU seconds of the server process over the timed part (0 directly).
        self.server_cpu = 0.0
        #: The part of ``server_cpu`` its main thread used (the event loop, under uvicorn).
        self.server_loop_cpu = 0.0

    def cpu_per_command(self) -> dict[str, float]:
        """Microseconds of CPU per command: the caller's, the server's, and its event loop's.

        The rest of the server's is its other threads' (the writer's and workers').
        """
        commands = len(self.all())
        return {
            "caller": round(self.cpu / commands * 1e6, 1),
            "server": round(self.server_cpu / commands * 1e6, 1),
            "server-loop": round(self.server_loop_cpu / commands * 1e6, 1),
        }

    def all(self) -> list[float]:
        """Every command's latency."""
        return [value for kind in KINDS for value in self.latencies[kind]]

    def per_second(self) -> float:
        """Commands per second over the round's wall time."""
        return len(self.all()) / self.seconds

    @staticmethod
    def quantile(values: list[float], share: float) -> float:
        """The ``share`` quantile of ``values``, in microseconds (nearest rank)."""
        ordered = sorted(values)
        index = min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))
        return ordered[index] * 1e6


def _jobs(ledger: Ledger, n_jobs: int, updates: int, into: dict[str, list[float]] | None) -> None:
    """Run ``n_jobs`` jobs of the workload on ``ledger``; add each command's latency ``into``."""
    clock = time.perf_counter
    for _ in range(n_jobs):
        began = clock()
        job = ledger.start(service="bench", entity="item", type="service", state={"done": 0})
        ended = clock()
        if into is not None:
            into["start"].append(ended - began)
        for done in range(1, updates + 1):
            began = clock()
            job = ledger.update(job.id, etag=job.etag, state_update={"done": done})
            ended = clock()
            if into is not None:
                into["update"].append(ended - began)
        began = clock()
        ledger.complete(job.id, etag=job.etag, state_update={"done": updates})
        ended = clock()
        if into is not None:
            into["complete"].append(ended - began)


def run_round(
    ledgers: list[Ledger],
    n_jobs: int,
    updates: int,
    warm_jobs: int,
    server: Server | None = None,
) -> Round:
    """Each ledger in a thread of its own: ``warm_jobs`` untimed jobs, then ``n_jobs`` timed.

    The timed part starts when every thread is warm (a barrier) and ends when
    the last thread is done; a thread's error is raised here. The CPU time of
    this process, and of ``server`` when given, is taken over the timed part.
    """
    result = Round()
    own: list[dict[str, list[float]]] = [{kind: [] for kind in KINDS} for _ in ledgers]
    barrier = threading.Barrier(len(ledgers) + 1, timeout=START_SECONDS)
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            _jobs(ledgers[index], warm_jobs, updates, None)
            barrier.wait()
            _jobs(ledgers[index], n_jobs, updates, own[index])
        except BaseException as err:
            errors.append(err)
            barrier.abort()
            raise

    threads = [threading.Thread(target=work, args=(index,)) for index in range(len(ledgers))]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait()
    began = time.perf_counter()
    cpu = time.process_time()
    server_cpu, loop_cpu = (0.0, 0.0) if server is None else server.cpu_seconds_split()
    for thread in threads:
        thread.join(timeout=600)
    result.seconds = time.perf_counter() - began
    result.cpu = time.process_time() - cpu
    if server is not None:
        server_cpu_now, loop_cpu_now = server.cpu_seconds_split()
        result.server_cpu = server_cpu_now - server_cpu
        result.server_loop_cpu = loop_cpu_now - loop_cpu
    if errors:
        raise errors[0]
    if any(thread.is_alive() for thread in threads):
        msg = "a client thread did not finish within 600 s"
        raise TimeoutError(msg)
    for latencies in own:
        for kind in KINDS:
            result.latencies[kind].extend(latencies[kind])
    return result


# -- the service process ---------------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _jobledger(*arguments: str, log: Any = subprocess.DEVNULL) -> subprocess.Popen[str]:  # noqa: ANN401  (a file or DEVNULL)
    return subprocess.Popen(  # noqa: S603  (our own interpreter and module)
        [sys.executable, "-m", "jobledger", *arguments],
        stdout=subprocess.PIPE if log is None else log,
        stderr=subprocess.STDOUT if log is not None else subprocess.PIPE,
        text=True,
    )


def add_client(store: str) -> str:
    """Add the benchmark's client (every permission) with ``jobledger clients add``; its secret."""
    process = _jobledger("clients", "add", _CLIENT_ID, "--allow", "*", "--store", store, log=None)
    out, err = process.communicate(timeout=START_SECONDS)
    if process.returncode != 0:
        msg = f"jobledger clients add failed ({process.returncode}): {err.strip()[-500:]}"
        raise RuntimeError(msg)
    return out.strip().splitlines()[-1]


class Server:
    """A running ``jobledger serve`` process.

    Attributes:
        url: Its base URL.
        pid: Its process id.
    """

    def __init__(self, url: str, pid: int) -> None:
        """Describe a server; see the class for the arguments."""
        self.url = url
        self.pid = pid

    def cpu_seconds(self) -> float:
        """The CPU time the server process has used so far (0 where ``/proc`` is missing)."""
        return _cpu_seconds(Path(f"/proc/{self.pid}/stat"))

    def cpu_seconds_split(self) -> tuple[float, float]:
        """:meth:`cpu_seconds`, and the part of it its main thread used (the event loop's)."""
        return self.cpu_seconds(), _cpu_seconds(Path(f"/proc/{self.pid}/task/{self.pid}/stat"))


def _cpu_seconds(stat: Path) -> float:
    """User and system CPU seconds from a ``/proc`` ``stat`` file (0 where it is missing)."""
    try:
        fields = stat.read_text(encoding="ascii")
    except OSError:
        return 0.0
    after_name = fields.rsplit(")", 1)[1].split()
    user, system = int(after_name[11]), int(after_name[12])  # utime, stime in ticks
    return (user + system) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def serve(store: str, log_path: str) -> Iterator[Server]:
    """``python -m jobledger serve`` on ``store`` and a free loopback port.

    Waits (at most ``START_SECONDS``) until the port takes connections; on
    leaving, interrupts the server (as Ctrl-C does) and waits for it to stop,
    killing it after ``STOP_SECONDS``. The server's output goes to ``log_path``.
    """
    port = free_port()
    with open(log_path, "w", encoding="utf-8") as log:  # noqa: PTH123
        process = _jobledger(
            "serve", "--store", store, "--host", "127.0.0.1", "--port", str(port), log=log
        )
        try:
            _wait_listening(process, port, log_path)
            yield Server(f"http://127.0.0.1:{port}", process.pid)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_SECONDS)


def _wait_listening(process: subprocess.Popen[str], port: int, log_path: str) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            with open(log_path, encoding="utf-8") as log:  # noqa: PTH123
                tail = log.read()[-800:]
            msg = f"jobledger serve exited ({process.returncode}) before listening: {tail}"
            raise RuntimeError(msg)
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    msg = f"jobledger serve did not listen on port {port} within {START_SECONDS} s"
    raise TimeoutError(msg)


def client_for(url: str, secret: str) -> Any:  # noqa: ANN401  (a JobsClient; the extra is optional)
    """A :class:`~jobledger.http.JobsClient` of the benchmark's client at ``url``."""
    from jobledger.http import JobsClient  # noqa: PLC0415  (the server extra is optional)

    return JobsClient(url, _CLIENT_ID, secret, timeout=60.0)


def raw_client_for(url: str, secret: str) -> RawClient:
    """A :class:`RawClient` of the benchmark's client at ``url``, its token fetched."""
    return RawClient(url, _CLIENT_ID, secret)


class Version(NamedTuple):
    """A command's answer as :class:`RawClient` reads it: the job's id and its new ETag."""

    id: str
    etag: str


class RawClient:
    """A lean client of the service: ``http.client``, one kept-alive connection, no library.

    The connection is opened anew when it was left unused over :data:`IDLE_SECONDS`.

    It sends what :class:`~jobledger.http.JobsClient` sends for the workload's
    commands (the same routes, the bearer token, ``If-Match`` with the quoted
    ETag, ``Content-Type: application/json`` and the same JSON body, byte for
    byte) and reads what a caller needs of the answer (the job's id and ETag
    from its JSON). Not thread-safe: one per thread, as one connection each.
    """

    def __init__(self, url: str, client_id: str, secret: str) -> None:
        """Connect to the service at ``url`` and fetch a token for ``client_id``."""
        parts = urlsplit(url)
        self._connection = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=60.0
        )
        self._used = time.monotonic()
        form = f"grant_type=client_credentials&client_id={quote(client_id)}"
        form += f"&client_secret={quote(secret)}"
        token = self._send(
            "POST", "/token", form.encode(), {"Content-Type": "application/x-www-form-urlencoded"}
        )["access_token"]
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()

    def _send(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> Any:  # noqa: ANN401  (JSON)
        if time.monotonic() - self._used > IDLE_SECONDS:
            self._connection.close()  # opened again by the request
        self._connection.request(method, path, body, headers)
        response = self._connection.getresponse()
        content = response.read()
        self._used = time.monotonic()
        if response.status >= 400:  # noqa: PLR2004
            msg = f"{method} {path}: {response.status} {content[:300]!r}"
            raise RuntimeError(msg)
        return json.loads(content)

    def _command(self, path: str, body: dict[str, object], etag: str | None = None) -> Version:
        headers = self._headers
        if etag is not None:
            headers = {**headers, "If-Match": f'"{etag}"'}
        text = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        job = self._send("POST", path, text.encode(), headers)
        return Version(job["JobId"], job["ETag"])

    def start(self, *, service: str, entity: str, type: str, state: object = None) -> Version:
        """StartJob: ``POST /jobs``."""
        body = {
            "Service": service,
            "Entity": entity,
            "Type": type,
            "DisplayName": "",
            "Description": "",
            "Input": {},
            "State": {} if state is None else state,
            "Actor": None,
        }
        return self._command("/jobs", body)

    def update(self, job_id: str, *, etag: str, state_update: object) -> Version:
        """UpdateJob: ``POST /jobs/{id}:update`` with ``If-Match``."""
        body = {
            "Status": None,
            "DisplayName": None,
            "Description": None,
            "StateUpdate": state_update,
            "Actor": None,
        }
        return self._command(f"/jobs/{quote(job_id, safe='')}:update", body, etag)

    def complete(self, job_id: str, *, etag: str, state_update: object) -> Version:
        """CompleteJob: ``POST /jobs/{id}:complete`` with ``If-Match``."""
        body = {
            "DisplayName": None,
            "Description": None,
            "StateUpdate": state_update,
            "Actor": None,
        }
        return self._command(f"/jobs/{quote(job_id, safe='')}:complete", body, etag)


def _httpx_refusals(url: str) -> Callable[[], int]:
    """A sender of one refused request on httpx's transport (as ``JobsClient``); its status."""
    import httpx  # noqa: PLC0415  (the server extra is optional)

    transport = httpx.HTTPTransport()
    target = httpx.URL(f"{url}/jobs")

    def send() -> int:
        response = transport.handle_request(
            httpx.Request("POST", target, content=_REFUSED_BODY, headers=_REFUSED_HEADERS)
        )
        response.read()
        response.close()
        return response.status_code

    return send


def _raw_refusals(url: str) -> Callable[[], int]:
    """A sender of one refused request on ``http.client`` (as :class:`RawClient`); its status."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)

    def send() -> int:
        connection.request("POST", "/jobs", _REFUSED_BODY, _REFUSED_HEADERS)
        response = connection.getresponse()
        response.read()
        return response.status

    return send


_REFUSED_BODY = b'{"Service":"bench"}'
_REFUSED_HEADERS = {"Content-Type": "application/json"}


def http_floor(url: str, requests: int, *, clients: int = 1, raw: bool = False) -> list[float]:
    """Latencies (seconds) of requests the service refuses at once, ``requests`` per client.

    ``POST /jobs`` without a token: uvicorn, Starlette's routing, a 401 problem
    document, and on the client's side httpx's transport on one kept-alive
    connection (as :class:`~jobledger.http.JobsClient` sends its requests), or
    with ``raw`` ``http.client`` (as :class:`RawClient`); no token check, no
    ledger. The least any command costs through the service. ``clients``
    threads send together, each on a connection of its own (after a barrier).
    """
    senders = [(_raw_refusals if raw else _httpx_refusals)(url) for _ in range(clients)]
    own: list[list[float]] = [[] for _ in senders]
    barrier = threading.Barrier(clients, timeout=START_SECONDS)
    errors: list[BaseException] = []

    def refused(send: Callable[[], int], latencies: list[float]) -> None:
        began = time.perf_counter()
        status = send()
        latencies.append(time.perf_counter() - began)
        if status != 401:  # noqa: PLR2004
            msg = f"expected 401 from POST /jobs without a token, got {status}"
            raise RuntimeError(msg)

    def work(index: int) -> None:
        try:
            barrier.wait()
            for _ in range(requests):
                refused(senders[index], own[index])
        except BaseException as err:
            errors.append(err)
            barrier.abort()
            raise

    threads = [threading.Thread(target=work, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    if errors:
        raise errors[0]
    return [value for latencies in own for value in latencies]
