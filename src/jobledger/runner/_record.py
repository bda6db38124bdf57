"""How a run is kept in the ledger: its job, its state layout, and ETag-guarded writes.

A run is a job (service :data:`RUN_SERVICE`, entity :data:`RUN_ENTITY`,
type = the definition's identifier). Its ``input`` is the run's request and
never changes; its ``state`` is the run's progress; every change goes through
:class:`~jobledger.Jobs` with the ETag the runner holds. The layout of
``input`` and ``state`` is documented in :mod:`jobledger.runner`.
"""

from __future__ import annotations

import logging
import time
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

import attrs

from jobledger._application.jobs import Jobs
from jobledger._core.errors import (
    ConcurrencyError,
    InvalidTransitionError,
    JobNotFoundError,
    StorageTimeoutError,
    StorageUnavailableError,
)
from jobledger._core.job import Job
from jobledger._core.jsondoc import JsonObject, JsonValue, freeze, merge_patch
from jobledger.runner._errors import RunNotFoundError, RunTakenOverError
from jobledger.runner._outcome import RunResult
from jobledger.runner._states import RunStatus, RunTrigger, TaskStatus, next_run_status

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from jobledger.runner._definition import JobDefinition, Task

logger = logging.getLogger("jobledger.runner")

__all__ = [
    "RUN_ENTITY",
    "RUN_SERVICE",
    "RunRecorder",
    "compose_patches",
    "drive_of",
    "initial_state",
    "load_run",
    "pending_entries",
    "request_cancel",
]

#: The service of every run's job, unless a runner is given another.
RUN_SERVICE = "jobledger.runner"
#: The entity of every run's job.
RUN_ENTITY = "job"

#: Seconds a write keeps retrying a storage that times out or is unreachable.
STORAGE_RETRY_SECONDS = 5.0
#: Seconds before the first retry; each next one waits twice as long.
STORAGE_RETRY_FIRST_PAUSE = 0.05

Command = Literal["update", "complete", "fail", "cancel"]


def pending_entries(definition: JobDefinition) -> Mapping[str, JsonValue]:
    """Each task's entry in the state of a new run of ``definition``, frozen.

    A runner keeps them for the runs it starts: the ledger takes frozen values
    without checking them again.
    """
    return MappingProxyType(
        {
            task.identifier: freeze(
                {
                    "status": TaskStatus.PENDING.value,
                    "type": task.type,
                    "launch_order": task.launch_order,
                    "side": task.side,
                    "index": index,
                    "attempts": 0,
                },
                field="state",
            )
            for index, task in enumerate(definition.tasks)
        }
    )


def initial_state(
    definition: JobDefinition,
    tasks: Iterable[Task],
    force: int | None,
    *,
    entries: Mapping[str, JsonValue] | None = None,
) -> dict[str, object]:
    """The state a new run starts with: every selected task ``pending``.

    Args:
        definition: The run's definition.
        tasks: The selected tasks.
        force: The run's force threshold.
        entries: :func:`pending_entries` of ``definition``, if kept; made here otherwise.
    """
    pending = pending_entries(definition) if entries is None else entries
    state: dict[str, object] = {
        "definition": definition.identifier,
        "tasks": {task.identifier: pending[task.identifier] for task in tasks},
        "launch_groups": {},
        "warnings": [],
    }
    if force is not None:
        state["force"] = force
    return state


def drive_of(job: Job) -> tuple[str | None, int]:
    """The id and number of the drive that last claimed the run (``None, 0`` if none)."""
    drive = job.state.get("drive")
    if not isinstance(drive, dict):
        return None, 0
    drive_id, number = drive.get("id"), drive.get("number")
    return (
        drive_id if isinstance(drive_id, str) else None,
        number if isinstance(number, int) and not isinstance(number, bool) else 0,
    )


def load_run(jobs: Jobs, run_id: str, service: str = RUN_SERVICE) -> Job:
    """The job of run ``run_id``.

    Raises:
        RunNotFoundError: there is no such job, or it is not a run.
    """
    try:
        job = jobs.get(run_id)
    except JobNotFoundError:
        raise RunNotFoundError(run_id) from None
    if job.service != service or job.entity != RUN_ENTITY:
        detail = f"job {run_id!r} is a {job.service}/{job.entity} job, not a {service} run"
        raise RunNotFoundError(run_id, detail)
    return job


def request_cancel(jobs: Jobs, run_id: str, *, service: str = RUN_SERVICE) -> RunResult:
    """Ask a run to stop, from any thread or process that shares the ledger.

    A running run gets ``cancel_requested`` in its state: its runner notices it
    at its next write or poll, raises the cancellation flag of the tasks
    running, launches nothing more, and ends the run ``canceled`` once they
    finish. A blocked run is driven by nobody, so it is canceled at once. A
    run that is over is left as it is. Conflicting writes are retried with the
    run's new ETag.

    Returns:
        The run as the request left it (``running`` with ``cancel_requested``,
        ``canceled``, or the terminal status it already had).

    Raises:
        RunNotFoundError: no run has this id.
    """
    while True:
        job = load_run(jobs, run_id, service)
        try:
            if job.phase.is_terminal:
                return RunResult.of(job)
            if job.state.get("cancel_requested") is not True:
                job = jobs.update(run_id, etag=job.etag, state_update={"cancel_requested": True})
            if job.status == RunStatus.BLOCKED:
                assert next_run_status(RunStatus.BLOCKED, RunTrigger.CANCEL)  # noqa: S101
                job = jobs.cancel(run_id, etag=job.etag)
        except (ConcurrencyError, InvalidTransitionError):
            continue
        return RunResult.of(job)


def compose_patches(first: JsonObject, second: JsonObject) -> JsonObject | None:
    """One merge patch that does what ``first`` then ``second`` do, or ``None`` if none can.

    RFC 7396 patches compose except where ``second`` merges an object into a
    member ``first`` replaces with a non-object.

    >>> a = freeze({"done": 1, "files": {"a": 1}}, field="p")
    >>> b = freeze({"done": 2, "files": {"b": 2}}, field="p")
    >>> compose_patches(a, b)
    {'done': 2, 'files': {'a': 1, 'b': 2}}
    >>> compose_patches(freeze({"files": None}, field="p"), b) is None
    True
    """
    composed: dict[str, JsonValue] = dict(first)
    for key, value in second.items():
        if isinstance(value, JsonObject) and key in first:
            earlier = first[key]
            if not isinstance(earlier, JsonObject):
                return None
            inner = compose_patches(earlier, value)
            if inner is None:
                return None
            composed[key] = inner
        else:
            composed[key] = value
    frozen = freeze(composed, field="state_update")
    assert isinstance(frozen, JsonObject)  # noqa: S101
    return frozen


@attrs.define
class RunRecorder:
    """Writes one drive of a run to the ledger, holding the run's ETag.

    A write that meets another's change (:class:`~jobledger.ConcurrencyError`)
    re-reads the run: a cancel request or any other change that leaves the
    drive in charge is taken in, and the write is applied again on top; a
    claim by another drive raises :class:`RunTakenOverError`; a run ended by
    someone else marks the recorder ``closed``, after which writes only
    update the local view, so no outcome is lost from the result. A storage
    that times out or cannot be reached is retried, with pauses that double,
    for up to :data:`STORAGE_RETRY_SECONDS`.

    Attributes:
        jobs: The ledger.
        job: The run's job as last written or read.
        drive_id: The id this drive claimed the run with; ``None`` for a new
            run that no drive could claim (the ledger refused the claim), which
            is ended at once.
        cancel_requested: Whether a cancel request was seen.
        closed: Whether someone else ended the run in the ledger.
        last_write: When the last write succeeded (``time.monotonic``).
    """

    jobs: Jobs
    job: Job
    drive_id: str | None
    cancel_requested: bool = False
    closed: bool = False
    last_write: float = attrs.field(factory=time.monotonic)

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.job.id

    def write(
        self,
        command: Command,
        *,
        status: str | None = None,
        patch: dict[str, object] | None = None,
        launch: bool = False,
    ) -> bool:
        """Apply one change to the run; return whether the ledger took it.

        Args:
            command: ``update``, ``complete``, ``fail`` or ``cancel``.
            status: The new status (``update`` only).
            patch: The merge patch for the state (not for ``cancel``).
            launch: The change launches tasks: it is dropped (``False`` is
                returned) once a cancel request is seen, so nothing starts after one.

        Raises:
            RunTakenOverError: another drive claimed the run.
            StorageTimeoutError: the storage stayed locked for longer than
                :data:`STORAGE_RETRY_SECONDS`.
            StorageUnavailableError: the storage stayed unreachable for longer
                than :data:`STORAGE_RETRY_SECONDS`.
        """
        stale = False
        give_up: float | None = None
        pause = STORAGE_RETRY_FIRST_PAUSE
        while True:
            if self.closed:
                if patch is not None:
                    self._apply_locally(patch)
                return False
            if launch and self.cancel_requested:
                return False
            try:
                if stale:
                    self.observe(self.jobs.get(self.run_id))
                    stale = False
                    continue
                self.job = self._send(command, status, patch)
            except (ConcurrencyError, InvalidTransitionError):
                stale = True
                continue
            except (StorageTimeoutError, StorageUnavailableError):
                now = time.monotonic()
                give_up = now + STORAGE_RETRY_SECONDS if give_up is None else give_up
                if now >= give_up:
                    raise
                time.sleep(min(pause, give_up - now))
                pause *= 2
                continue
            self.last_write = time.monotonic()
            return True

    def _send(self, command: Command, status: str | None, patch: object) -> Job:
        run_id, etag = self.run_id, self.job.etag
        if command == "update":
            return self.jobs.update(run_id, etag=etag, status=status, state_update=patch)
        if command == "complete":
            return self.jobs.complete(run_id, etag=etag, state_update=patch)
        if command == "fail":
            return self.jobs.fail(run_id, etag=etag, state_update=patch)
        return self.jobs.cancel(run_id, etag=etag)

    def _apply_locally(self, patch: dict[str, object]) -> None:
        frozen = freeze(patch, field="state_update")
        state = merge_patch(self.job.state, frozen)
        assert isinstance(state, JsonObject)  # noqa: S101
        self.job = attrs.evolve(self.job, state=state)

    def poll(self) -> None:
        """Read the run and take in what others changed since this drive last wrote.

        A read that times out or finds the storage unreachable is skipped: the
        next poll tries again, and the drive's writes, which retry for
        :data:`STORAGE_RETRY_SECONDS`, say when the storage stays down.

        Raises:
            RunTakenOverError: another drive claimed the run.
        """
        if self.closed:
            return
        try:
            current = self.jobs.get(self.run_id)
        except (StorageTimeoutError, StorageUnavailableError) as error:
            logger.warning(
                "could not read the run to poll it; trying again at the next poll (%s)",
                error,
                extra={"run_id": self.run_id},
            )
            return
        if current.etag != self.job.etag:
            self.observe(current)

    def observe(self, current: Job) -> None:
        """Take in ``current``, the run as someone else left it.

        Raises:
            RunTakenOverError: another drive claimed the run.
        """
        if current.phase.is_terminal:
            # Keep our view of the tasks; only the status is theirs.
            self.job = attrs.evolve(self.job, status=current.status, etag=current.etag)
            self.closed = True
            return
        drive_id, _ = drive_of(current)
        if drive_id != self.drive_id:
            raise RunTakenOverError(self.run_id, drive_id or "")
        if current.state.get("cancel_requested") is True:
            self.cancel_requested = True
        self.job = current
