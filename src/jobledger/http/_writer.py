"""The service's writer: commands that arrive together cross to one thread once, saved together.

Each command request would otherwise cost a handoff of its own to a worker
thread (and back), and a thread of its own waiting on the ledger's group
commit. :class:`CommandWriter` queues the commands of the requests in flight;
its one thread takes every queued command at once and carries them out as one
batch (:meth:`jobledger.Jobs.handle_all`: one transaction, one flush), then
hands every outcome back to the event loop in one call. The commands that
requests hand over in one turn of the event loop cross to the thread together
too, at the end of that turn (one wake-up of the thread, not one each). A
command arriving while a batch is written joins the next one; a command alone
is carried out at once, waiting for no company.

Each command keeps the outcome it would have had alone:

* A batch holds at most one command per job and per request id, so no command
  of a batch is decided on another's result (two requests with the same ETag:
  exactly one wins, as without the writer).
* A batch is all or none. When the ledger refuses it (a stale ETag, an invalid
  transition, invalid data, ...), nothing of it was written. The refused
  command (named by the error's :attr:`~jobledger.JobledgerError.batch_index`)
  is answered with that error, its own, and the others are written again as a
  batch without it, up to :data:`MAX_REDOS` times. A refusal that names no
  command, and those past that bound, answer each command left :data:`ALONE`:
  its request carries it out alone, as if there were no writer, and gets its
  own outcome and error.
* A failure of the storage itself (the commit's outcome unknown) is every
  command's answer, as a group commit gives it to every save it holds; no
  command is carried out twice.

Commands with the wildcard ETag (retried with pauses while others win) and
ledgers whose repository cannot save a batch atomically do not come here: see
:meth:`CommandWriter.takes`. Nor do commands once the writer is stopping; a
command queued as it stops, after its last batch, is answered :data:`ALONE`.
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

__all__ = ["ALONE", "MAX_BATCH", "MAX_REDOS", "CommandWriter"]

logger = logging.getLogger(__name__)

#: The most commands one batch holds.
MAX_BATCH = 64

#: The most times a refused batch is written again without its refused command.
#: Each time decides the commands left again; past it, they go :data:`ALONE`.
MAX_REDOS = 8

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
        # Items: the commands handed over in one turn of the event loop, or _STOP.
        self._queue: queue.SimpleQueue[list[_Waiting] | object] = queue.SimpleQueue()
        # The commands handed over in this turn of the event loop, queued at its end.
        self._handed: list[_Waiting] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        # Held while a command is queued, and while the thread ends: a command is
        # either queued before the thread's last look at the queue, or sees it ended.
        self._ending = threading.Lock()
        self._ended = False

    def start(self) -> None:
        """Start the writer's thread, answering to the running event loop."""
        self._loop = asyncio.get_running_loop()
        self._stopping = self._ended = False
        self._thread = threading.Thread(target=self._run, name="jobledger-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Let the writer finish the commands queued, then end its thread.

        From the call on, :meth:`takes` takes no command; one queued after the
        thread's last batch is answered :data:`ALONE`.
        """
        if self._thread is None:
            return
        self._stopping = True
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
            and not self._stopping
            and self._atomic
            and (isinstance(command, StartJob) or command.etag != ANY_ETAG)
        )

    async def handle(self, command: Command) -> _Outcome:
        """Queue ``command``; its job, or :data:`ALONE` (see the module).

        Raises:
            JobledgerError: the ledger refused the command, or the storage failed
                while writing its batch.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_Outcome] = loop.create_future()
        if not self._handed:
            loop.call_soon(self._hand_over)
        self._handed.append((command, future))
        outcome = await future
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _hand_over(self) -> None:
        """Queue the commands handed over in this turn of the event loop (in the loop)."""
        handed, self._handed = self._handed, []
        with self._ending:
            if not self._ended:
                self._queue.put(handed)
                return
        _settle([(future, ALONE) for _, future in handed])

    # -- the writer's thread -----------------------------------------------------------

    def _run(self) -> None:
        held: list[_Waiting] = []
        while True:
            taken, stop = self._taken(block=not held)
            waiting = [*held, *taken]
            held = []
            while waiting:
                batch, rest = _batch(waiting)
                self._answer(batch, self._outcomes([command for command, _ in batch]))
                waiting = rest
                if waiting and not stop:
                    # Those left out wait for the next batch, with whatever came meanwhile.
                    held = waiting
                    break
            if stop:
                self._end()
                return

    def _end(self) -> None:
        """Answer :data:`ALONE` to the commands queued after the last batch taken."""
        with self._ending:
            self._ended = True
            waiting, _ = self._taken(block=False)
        if waiting:
            self._answer(waiting, [ALONE] * len(waiting))

    def _taken(self, *, block: bool) -> tuple[list[_Waiting], bool]:
        """Every command queued (waiting for some when ``block``), and whether a stop was."""
        items: list[list[_Waiting] | object] = []
        if block:
            items.append(self._queue.get())
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        waiting: list[_Waiting] = [
            each for item in items if isinstance(item, list) for each in item
        ]
        return waiting, any(item is _STOP for item in items)

    def _outcomes(self, commands: list[Command]) -> list[_Outcome]:
        """Each command's outcome: its job, :data:`ALONE`, or its error."""
        outcomes: list[_Outcome] = [ALONE] * len(commands)
        left = list(range(len(commands)))  # the positions of the commands still to write
        for _ in range(1 + MAX_REDOS):
            written = [commands[at] for at in left]
            logger.debug("a batch of %d commands", len(written))
            try:
                jobs = (
                    [self._jobs.handle(written[0])]
                    if len(written) == 1
                    else self._jobs.handle_all(written)
                )
            except JobledgerError as err:
                if isinstance(err, StorageError) or len(written) == 1:
                    for at in left:
                        outcomes[at] = err
                    return outcomes
                if err.batch_index is None:
                    # A refusal naming no command: each command is carried out alone.
                    return outcomes
                # Nothing of the batch was written: the refused command has its
                # answer, the others are written again without it. Its request
                # sent one command, so the error names no place in a batch.
                culprit = left.pop(err.batch_index)
                err.batch_index = None
                outcomes[culprit] = err
                continue
            except Exception as err:
                logger.exception("the service's writer failed on a batch of %d", len(written))
                for at in left:
                    outcomes[at] = err
                return outcomes
            for at, job in zip(left, jobs, strict=True):
                outcomes[at] = job
            return outcomes
        return outcomes  # refused past the bound: those left go alone

    def _answer(self, batch: list[_Waiting], outcomes: list[_Outcome]) -> None:
        assert self._loop is not None  # noqa: S101  (started before any command is queued)
        pairs = [(future, outcome) for (_, future), outcome in zip(batch, outcomes, strict=True)]
        try:
            self._loop.call_soon_threadsafe(_settle, pairs)
        except RuntimeError:
            logger.warning("the event loop closed before %d answers", len(pairs))


def _batch(waiting: list[_Waiting]) -> tuple[list[_Waiting], list[_Waiting]]:
    """The commands of one batch (in arrival order), and those left for the next one.

    A batch holds at most :data:`MAX_BATCH` commands, and one per job and per request id.
    """
    batch: list[_Waiting] = []
    rest: list[_Waiting] = []
    jobs: set[str] = set()
    requests: set[str] = set()
    for item in waiting:
        if len(batch) == MAX_BATCH:
            rest.append(item)
            continue
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
