"""The jobs service over HTTP against the library called directly: the cases of issue 16.

One workload on both sides: each of C concurrent clients (threads) runs jobs of
one start, U updates (each sent with the ETag the previous command returned,
``If-Match`` over HTTP) and one complete. Directly, the threads share one
:class:`~jobledger.Jobs`; through the service, each thread has its own
:class:`~jobledger.http.JobsClient` (its own connection) talking to a real
``python -m jobledger serve`` process on a free loopback port, started and
stopped here. Every command's latency is taken on the caller's side.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterator

    from jobledger import Job

__all__ = [
    "KINDS",
    "Ledger",
    "Round",
    "Server",
    "add_client",
    "client_for",
    "free_port",
    "http_floor",
    "run_round",
    "serve",
]

#: The commands of the workload, in the order a job sends them.
KINDS = ("start", "update", "complete")

#: Seconds to wait for the service to listen, and then for it to stop.
START_SECONDS = 60.0
STOP_SECONDS = 15.0

_CLIENT_ID = "bench"


class Ledger(Protocol):
    """What the workload calls: :class:`~jobledger.Jobs` and :class:`~jobledger.http.JobsClient`."""

    def start(self, *, service: str, entity: str, type: str, state: object = None) -> Job:  # noqa: D102
        ...

    def update(self, job_id: str, *, etag: str, state_update: object) -> Job:  # noqa: D102
        ...

    def complete(self, job_id: str, *, etag: str, state_update: object) -> Job:  # noqa: D102
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

    def cpu_per_command(self) -> dict[str, float]:
        """Microseconds of CPU per command, on the caller's side and on the server's."""
        commands = len(self.all())
        return {
            "caller": round(self.cpu / commands * 1e6, 1),
            "server": round(self.server_cpu / commands * 1e6, 1),
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
    cpu, server_cpu = time.process_time(), 0.0 if server is None else server.cpu_seconds()
    for thread in threads:
        thread.join(timeout=600)
    result.seconds = time.perf_counter() - began
    result.cpu = time.process_time() - cpu
    if server is not None:
        result.server_cpu = server.cpu_seconds() - server_cpu
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
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text(encoding="ascii")
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


def http_floor(url: str, requests: int) -> list[float]:
    """Latencies (seconds) of ``requests`` requests the service refuses at once.

    ``POST /jobs`` without a token: uvicorn, Starlette's routing, a 401 problem
    document, and on the client's side httpx's transport on one kept-alive
    connection (as :class:`~jobledger.http.JobsClient` sends its requests); no
    token check, no ledger. The least any command costs through the service.
    """
    import httpx  # noqa: PLC0415  (the server extra is optional)

    latencies = []
    body = b'{"Service":"bench"}'
    headers = {"Content-Type": "application/json"}
    target = httpx.URL(f"{url}/jobs")
    with httpx.HTTPTransport() as transport:
        for _ in range(requests):
            began = time.perf_counter()
            response = transport.handle_request(
                httpx.Request("POST", target, content=body, headers=headers)
            )
            response.read()
            response.close()
            latencies.append(time.perf_counter() - began)
            if response.status_code != 401:  # noqa: PLR2004
                msg = f"expected 401 from POST /jobs without a token, got {response.status_code}"
                raise RuntimeError(msg)
    return latencies
