"""The dashboard's actions on runs: cancel, and resume driven by the server in the background.

A cancel goes through :func:`jobledger.runner.request_cancel` (ETag-guarded
writes, retried on conflict). A resume needs the runs' job definitions: the
server's :class:`~jobledger.runner.Runner` (``jobledger serve --app``) claims
the run and drives it in a thread of its own; the run's lease keeps any other
process from driving it at the same time.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, wait
from typing import TYPE_CHECKING, Final

import attrs

from jobledger.runner import (
    Runner,
    RunNotResumableError,
    RunResult,
    RunStatus,
    UnknownDefinitionError,
    request_cancel,
)

if TYPE_CHECKING:
    from jobledger import Jobs

__all__ = ["Resumes", "cancel_run", "repairable", "resumable"]

logger = logging.getLogger(__name__)

# Seconds between two let-gos while the server stops, for drives that claim their run late.
_STOP_POLL: Final = 0.2


def cancel_run(jobs: Jobs, run_id: str, service: str, actor: str) -> RunResult:
    """Ask run ``run_id`` to stop (at once when nobody drives it); return the run as left.

    ``actor`` (the signed-in client) is recorded as the actor of the changes.

    Raises:
        RunNotFoundError: no run has this id.
    """
    return request_cancel(jobs, run_id, service=service, actor=actor)


def repairable(runner: Runner | None, definition: str, blocked: tuple[str, ...]) -> bool:
    """Whether every blocked task of a run of ``definition`` has a repair variant."""
    if runner is None or not blocked:
        return False
    try:
        found = runner.definition(definition)
    except UnknownDefinitionError:
        return False
    return all(found.task(name).repair is not None for name in blocked)


@attrs.define
class Resumes:
    """Resumes the server drives, each in a thread of its own.

    Attributes:
        runner: The server's runner (``jobledger serve --app``).
    """

    runner: Runner
    _running: dict[str, Future[RunResult]] = attrs.field(factory=dict)
    _lock: threading.Lock = attrs.field(factory=threading.Lock)
    _stopping: bool = False

    def start(
        self, run_id: str, *, repair: bool, force: int | None, actor: str | None = None
    ) -> Future[RunResult]:
        """Start driving run ``run_id`` on from its breakpoint; the future gives how it ended.

        ``actor`` (the signed-in client) is recorded on the drive and as the
        actor of every change it makes.

        The future raises what :meth:`~jobledger.runner.Runner.resume` raises
        (the run is driven elsewhere, is over, cannot be repaired, ...), and
        :class:`~jobledger.runner.RunNotResumableError` at once when this
        server resumes the run already (two people resuming it together) or
        is stopping.
        """
        future: Future[RunResult] = Future()
        with self._lock:
            refusal = (
                "the server is stopping"
                if self._stopping
                else "this server is resuming it already"
                if run_id in self._running
                else ""
            )
            if refusal:
                future.set_exception(RunNotResumableError(run_id, RunStatus.RUNNING.value, refusal))
                return future
            self._running[run_id] = future

        def drive() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = self.runner.resume(run_id, repair=repair, force=force, actor=actor)
            except BaseException as error:  # noqa: BLE001  (handed to whoever waits)
                future.set_exception(error)
                logger.info("a resume from the dashboard ended: %s", type(error).__name__)
            else:
                future.set_result(result)
            finally:
                with self._lock:
                    if self._running.get(run_id) is future:
                        del self._running[run_id]

        threading.Thread(target=drive, name=f"jobledger-dashboard-resume-{run_id}").start()
        return future

    def driving(self, run_id: str) -> bool:
        """Whether this server is driving run ``run_id`` now."""
        with self._lock:
            return run_id in self._running

    def stop(self, reason: str = "the server stopped", *, timeout: float = 10.0) -> None:
        """Let go of every run the server drives, so that another process resumes it at once.

        No resume starts after this. A drive that had not claimed its run
        yet when this was called is let go as soon as it has (for up to
        ``timeout`` seconds).
        """
        with self._lock:
            self._stopping = True
            pending = list(self._running.values())
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            self.runner.interrupt(reason)
            _, left = wait(pending, timeout=_STOP_POLL)
            pending = list(left)


def resumable(status: RunStatus, *, lease_over: bool) -> bool:
    """Whether a run in ``status`` can be resumed now: blocked, or running with nobody driving it.

    >>> (
    ...     resumable(RunStatus.BLOCKED, lease_over=False),
    ...     resumable(RunStatus.RUNNING, lease_over=False),
    ... )
    (True, False)
    """
    return status is RunStatus.BLOCKED or (status is RunStatus.RUNNING and lease_over)
