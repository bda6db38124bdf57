"""The service's writer: commands that arrive together cross to one thread once, saved together.

Each command request would otherwise cost a handoff of its own to a worker
thread (and back), and a thread of its own waiting on the ledger's group
commit. :class:`CommandWriter` queues the commands of the requests in flight;
its one thread takes every queued command at once and carries them out as one
batch (:meth:`jobledger.Jobs.handle_all`: one transaction, one flush), then
hands every outcome back to the event loop in one call. A command arriving
while a batch is written joins the next one; a command alone is carried out
at once, waiting for no company.

Each command keeps the outcome it would have had alone:

* A batch holds at most one command per job and per request id, so no command
  of a batch is decided on another's result (two requests with the same ETag:
  exactly one wins, as without the writer).
* A batch is all or none. When the ledger refuses it (a stale ETag, an invalid
  transition, invalid data, ...), nothing of it was written, and each of its
  commands is answered :data:`ALONE`: its request carries it out alone, as if
  there were no writer, and gets its own outcome and error.
* A failure of the storage itself (the commit's outcome unknown) is every
  command's answer, as a group commit gives it to every save it holds; no
  command is carried out twice.

Commands with the wildcard ETag (retried with pauses while others win) and
ledgers whose repository cannot save a batch atomically do not come here: see
:meth:`CommandWriter.takes`.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from typing import TYPE_CHECKING, Final

from jobledger import ANY_ETAG, AtomicBatches, JobledgerError, StartJob, StorageError

if TYPE_CHECKING:
    from jobledger import Command, Jobs

__all__ = ["ALONE", "MAX_BATCH", "CommandWriter"]

logger = logging.getLogger(__name__)

#: The most commands one batch holds.
MAX_BATCH = 64

#: The answer to a command of a refused batch: carry it out alone.
ALONE: Final = object()

_STOP: Final = object()

_Outcome = object  # a Job, ALONE, or the BaseException that is the command's answer
_Waiting = tuple["Command", "asyncio.Future[_Outcome]"]


class CommandWriter:
    """One thread carrying out the commands of concurrent requests in batches (see the module).

    Args:
        jobs: The ledger the commands go to.

    Start it with :meth:`start` inside the event loop that awaits its
    answers, and :meth:`stop` it when the app shuts down.
    """

    def __init__(self, jobs: Jobs) -> None:
        """A writer for ``jobs``; see the class."""
        self._jobs = jobs
        self._atomic = isinstance(jobs.repository, AtomicBatches)
        self._queue: queue.SimpleQueue[_Waiting | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Start the writer's thread, answering to the running event loop."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="jobledger-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Let the writer finish the commands queued, then end its thread."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._thread = None

    def takes(self, command: Command) -> bool:
        """Whether ``command`` goes through the writer (else its request carries it out alone).

        Not when the writer is not running, when the repository cannot save
        a batch atomically, or for a change with the wildcard ETag.
        """
        return (
            self._thread is not None
            and self._atomic
            and (isinstance(command, StartJob) or command.etag != ANY_ETAG)
        )

    async def handle(self, command: Command) -> _Outcome:
        """Queue ``command``; its job, or :data:`ALONE` (see the module).

        Raises:
            JobledgerError: the storage failed while writing the command's batch.
        """
        future: asyncio.Future[_Outcome] = asyncio.get_running_loop().create_future()
        self._queue.put((command, future))
        outcome = await future
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    # -- the writer's thread -----------------------------------------------------------

    def _run(self) -> None:
        held: list[_Waiting] = []
        while True:
            taken = [*held, *self._taken(block=not held)]
            held = []
            stop = any(item is _STOP for item in taken)
            waiting: list[_Waiting] = [item for item in taken if item is not _STOP]  # type: ignore[misc]
            while waiting:
                batch, rest = _batch(waiting)
                self._answer(batch, self._outcomes([command for command, _ in batch]))
                waiting = rest
                if waiting and not stop:
                    # Those left out wait for the next batch, with whatever came meanwhile.
                    held = waiting
                    break
            if stop:
                return

    def _taken(self, *, block: bool) -> list[_Waiting | object]:
        """Every queued item (waiting for one when ``block``), at most :data:`MAX_BATCH`."""
        items: list[_Waiting | object] = []
        if block:
            items.append(self._queue.get())
        while len(items) < MAX_BATCH:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return items

    def _outcomes(self, commands: list[Command]) -> list[_Outcome]:
        """Each command's outcome: its job, :data:`ALONE`, or its error."""
        logger.debug("a batch of %d commands", len(commands))
        try:
            if len(commands) == 1:
                return [self._jobs.handle(commands[0])]
            return list(self._jobs.handle_all(commands))
        except JobledgerError as err:
            if isinstance(err, StorageError) or len(commands) == 1:
                return [err] * len(commands)
            # A refusal: nothing of the batch was written; each command is carried out alone.
            return [ALONE] * len(commands)
        except Exception as err:
            logger.exception("the service's writer failed on a batch of %d", len(commands))
            return [err] * len(commands)

    def _answer(self, batch: list[_Waiting], outcomes: list[_Outcome]) -> None:
        assert self._loop is not None  # noqa: S101  (started before any command is queued)
        pairs = [(future, outcome) for (_, future), outcome in zip(batch, outcomes, strict=True)]
        try:
            self._loop.call_soon_threadsafe(_settle, pairs)
        except RuntimeError:
            logger.warning("the event loop closed before %d answers", len(pairs))


def _batch(waiting: list[_Waiting]) -> tuple[list[_Waiting], list[_Waiting]]:
    """The commands of one batch (in arrival order), and those left for the next one.

    A batch holds at most one command per job and per request id.
    """
    batch: list[_Waiting] = []
    rest: list[_Waiting] = []
    jobs: set[str] = set()
    requests: set[str] = set()
    for item in waiting:
        command = item[0]
        job_id = command.job_id
        request_id = command.request_id
        if (job_id is not None and job_id in jobs) or (
            request_id is not None and request_id in requests
        ):
            rest.append(item)
            continue
        if job_id is not None:
            jobs.add(job_id)
        if request_id is not None:
            requests.add(request_id)
        batch.append(item)
    return batch, rest


def _settle(pairs: list[tuple[asyncio.Future[_Outcome], _Outcome]]) -> None:
    """Answer each waiting request (in the event loop)."""
    for future, outcome in pairs:
        if not future.done():  # a request whose client went away was cancelled
            future.set_result(outcome)
