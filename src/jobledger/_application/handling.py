"""How a command, or a batch of them, is handled, written once for every kind of driver.

:class:`Handling` carries out one command (:meth:`Handling.one`) or a batch
(:func:`handle_all`) with plain calls to the :class:`Storage` its driver
gives: where jobs are recalled, loaded and saved. The synchronous :class:`~jobledger.Jobs` gives
its repository's; a batch decides its commands through a storage of its own
that answers from the jobs it changed and keeps their changes until the
batch is saved with one ``save_all``.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Generic, NamedTuple, TypeVar

import attrs

from jobledger._core.commands import ANY_ETAG, ChangeCommand, Command, StartJob
from jobledger._core.decide import (
    RECORD_EVENT_ID,
    Change,
    RequestRecord,
    check_keys,
    command_kind,
    decide_checked,
)
from jobledger._core.errors import (
    ConcurrencyError,
    InvalidJobDataError,
    InvalidTransitionError,
    JobAlreadyExistsError,
    JobledgerError,
    RequestIdConflictError,
    StorageError,
)
from jobledger._core.job import Job
from jobledger._core.lifecycle import CommandKind

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from jobledger._core.jsondoc import Limits

__all__ = [
    "WILDCARD_ATTEMPTS",
    "Handled",
    "Handling",
    "Storage",
    "handle_all",
]

_T = TypeVar("_T")

# Read per command: a module global is cheaper to reach than an enum member.
_START = CommandKind.START

#: How often a command with the wildcard ETag is decided before it gives up.
WILDCARD_ATTEMPTS = 100
#: The longest pause between two attempts of a wildcard command, in seconds.
WILDCARD_MAX_PAUSE = 0.05


class Storage:
    """What handling asks of its driver: six callables, kept as they are given.

    Attributes:
        recall: The job with an id as the driver last saved it, if it
            remembers it, else ``None``. No I/O: a driver that remembers
            nothing answers ``None``, and the job is loaded.
        load: The job with an id (raises
            :class:`~jobledger.JobNotFoundError` when there is none).
        find_request: The record of a request id, or ``None``.
        save: Save one change atomically.
        save_all: Save changes as one atomic unit, in order.
        pause: Wait so many seconds before going on.

    They are plain attributes rather than methods, so a driver hands over
    its bound methods and each call costs one call.
    """

    __slots__ = ("find_request", "load", "pause", "recall", "save", "save_all")

    def __init__(
        self,
        *,
        recall: Callable[[str], Job | None],
        load: Callable[[str], Job],
        find_request: Callable[[str], RequestRecord | None],
        save: Callable[[Change], object],
        save_all: Callable[[tuple[Change, ...]], object],
        pause: Callable[[float], object],
    ) -> None:
        self.recall = recall
        self.load = load
        self.find_request = find_request
        self.save = save
        self.save_all = save_all
        self.pause = pause


class Handled(NamedTuple):
    """What handling a command came to.

    Attributes:
        job: The job as the command left it.
        change: The change that was saved, or ``None`` when the command was a
            retry answered from its request record.
    """

    job: Job
    change: Change | None


# Handled(job, change) made by tuple's own constructor, with no Python frame: one per command.
_new_tuple = tuple.__new__


def _answer(record: RequestRecord, command: Command) -> Handled:
    if not record.answers(command):
        raise RequestIdConflictError(record.request_id)
    return Handled(record.job, None)


class Handling:
    """How one driver's commands are handled: its storage, clock, id factories and limits.

    Args:
        storage: Where jobs are recalled, loaded and saved.
        clock: The time of each change.
        new_id: Job ids.
        new_tag: ETags and event ids.
        limits: The data limits to enforce.
        recall: Whether to ask ``storage`` for remembered jobs; a driver whose
            loads cost no more than a recall (an in-memory repository) passes
            ``False`` and is asked for none.
    """

    __slots__ = ("clock", "limits", "new_id", "new_tag", "recall", "storage")

    def __init__(
        self,
        storage: Storage,
        *,
        clock: Callable[[], datetime],
        new_id: Callable[[], str],
        new_tag: Callable[[], str],
        limits: Limits,
        recall: bool,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.new_id = new_id
        self.new_tag = new_tag
        self.limits = limits
        self.recall = recall

    def one(self, command: Command) -> Handled:  # noqa: C901  (every command's path, in one frame on purpose)
        """Carry out ``command``; what it came to.

        A change command is first decided on the job the driver remembers
        saving (``storage.recall``), which spares a read when the driver is the
        job's only writer. The save's compare-and-set refuses a remembered job
        that another writer has changed since; the command is then decided
        again on the job as loaded, so what it comes to is what it would have
        come to without the recall.

        Raises:
            JobledgerError: whatever :func:`~jobledger._core.decide.decide` or
                the storage raise; a wildcard command is decided again on the
                new version when it loses a race, after a short pause with
                jitter, up to :data:`WILDCARD_ATTEMPTS` times.
        """
        kind = command_kind(command)  # refuses what is not a command before anything is read
        limits = self.limits
        check_keys(command, limits)
        storage = self.storage
        request_id = command.request_id
        if request_id is not None:
            record = storage.find_request(request_id)
            if record is not None:
                return _answer(record, command)
        attempts = 0
        starting = kind is _START
        recall = self.recall and not starting
        now: datetime | None = None
        tags = new_tag = self.new_tag
        while True:
            attempts += 1
            # The job the command is decided on (None for a start), and whether it was recalled.
            job: Job | None = None
            recalled = False
            if not starting:
                job_id: str = command.job_id  # type: ignore[assignment]  # not a start
                if recall:
                    job = storage.recall(job_id)
                    recalled = job is not None
                if job is None:
                    job = storage.load(job_id)
            if now is None:
                now = self.clock()
            change: Change | None = None
            try:
                change = decide_checked(job, command, kind, now, self.new_id, limits, tags)
                storage.save(change)
            except JobledgerError as error:
                recall = False
                if recalled and isinstance(error, _STALE_COPY_ERRORS):
                    # The remembered job may be behind the stored one (another
                    # writer changed it): decide again on the job as stored, at
                    # the same time and with the same ids, since nothing was
                    # written. This is no attempt of a wildcard command's.
                    attempts -= 1
                    if change is not None:
                        tags = _Replay((change.job.etag, _event_id(change)), new_tag)
                    continue
                now, tags = None, new_tag
                answer = _after_refusal(error, command, attempts, storage)
                if answer is None:
                    continue
                return answer
            return _new_tuple(Handled, (change.job, change))

    def all(self, commands: Sequence[Command]) -> tuple[Handled, ...]:
        """Carry out ``commands`` as one atomic batch; what each came to (:func:`handle_all`)."""
        return handle_all(commands, self)


def _event_id(change: Change) -> str:
    """The id of ``change``'s event, read without making the event."""
    record = change.record
    return change.event.event_id if record is None else record[RECORD_EVENT_ID]


class _Replay(Generic[_T]):
    """Values handed out again, then new ones: for a decision retaken after one that wrote nothing.

    A change's ids are drawn in one order (its ETag, then its event id; see
    :func:`~jobledger._core.decide.decide`), so handing them out again in that
    order gives the new decision the ids the first one took; a decision that
    failed before it drew any leaves none to hand out. (A batch replays its
    clock's readings the same way.)
    """

    def __init__(self, drawn: Sequence[_T], new: Callable[[], _T]) -> None:
        self._drawn = list(drawn)
        self._new = new

    def __call__(self) -> _T:
        return self._drawn.pop(0) if self._drawn else self._new()


class _Recording(Generic[_T]):
    """Hands out ``new()``'s values and remembers them, to be replayed by :class:`_Replay`."""

    def __init__(self, new: Callable[[], _T]) -> None:
        self.drawn: list[_T] = []
        self._new = new

    def __call__(self) -> _T:
        value = self._new()
        self.drawn.append(value)
        return value


def _after_refusal(
    error: JobledgerError, command: Command, attempts: int, storage: Storage
) -> Handled | None:
    """What a command refused with ``error`` comes to: a twin's answer, or ``None`` to try again.

    Raises:
        JobledgerError: ``error``, when neither applies.
    """
    if not isinstance(error, _TWIN_ERRORS):
        raise error
    if command.request_id is not None:
        # A twin of this command may have committed between our look-up and our
        # save (or our load, when it ended the job); if so, it is the answer.
        record = storage.find_request(command.request_id)
        if isinstance(record, RequestRecord):
            return _answer(record, command)
    if isinstance(error, InvalidTransitionError):
        raise error
    if _wildcard_may_retry(command, attempts):
        storage.pause(_backoff(attempts))
        return None
    if (
        isinstance(error, ConcurrencyError)
        and not isinstance(command, StartJob)
        and command.etag == ANY_ETAG
    ):
        raise _as_carried(error, command) from error
    raise error


def _backoff(attempts: int) -> float:
    """The pause in seconds before a wildcard command's next attempt.

    It grows with the attempts and has jitter, so racing writers stop
    colliding in lockstep.
    """
    ceiling = min(WILDCARD_MAX_PAUSE, 0.0005 * 2**attempts)
    return random.uniform(0, ceiling)  # noqa: S311  (jitter, not secrecy)


def _as_carried(error: ConcurrencyError, command: ChangeCommand) -> ConcurrencyError:
    """``error`` saying the ETag ``command`` carried, not the one it was last decided on."""
    return ConcurrencyError(error.job_id, command.etag, error.current_etag)


#: What a command may be refused with because a twin (the same command with the
#: same request id) committed first: the twin is then the answer.
_TWIN_ERRORS = (
    ConcurrencyError,
    InvalidTransitionError,
    JobAlreadyExistsError,
    RequestIdConflictError,
)

#: What deciding or saving on a remembered job may raise only because the job
#: changed since: its ETag, its phase, or the size its state would grow to.
_STALE_COPY_ERRORS = (ConcurrencyError, InvalidTransitionError, InvalidJobDataError)


def _wildcard_may_retry(command: Command, attempts: int) -> bool:
    """Whether a command that lost a race may be decided again on the new version."""
    return (
        not isinstance(command, StartJob)
        and command.etag == ANY_ETAG
        and attempts < WILDCARD_ATTEMPTS
    )


@attrs.define
class _Batch:
    """What a batch has decided so far: its changes, and the jobs as they leave them.

    Attributes:
        storage: The driver's storage.
        recall: Whether jobs the driver remembers may be used (see :class:`Storage`).
        recalled: Whether a decision used such a job.
        changes: The changes decided so far, in command order, each expecting
            the ETag the batch's changes before it leave its job with.
        commands: The command of each change.
        jobs: Each job the batch changed, as it leaves it.
        before: The ETag each job changed by the batch had before it (``None``
            for a job the batch starts).
        requests: The records of the request ids the batch's changes carry.
    """

    storage: Storage
    recall: bool
    recalled: bool = False
    changes: list[Change] = attrs.Factory(list)
    commands: list[Command] = attrs.Factory(list)
    jobs: dict[str, Job] = attrs.Factory(dict)
    before: dict[str, str | None] = attrs.Factory(dict)
    requests: dict[str, RequestRecord] = attrs.Factory(dict)

    def shown(self, job_id: str) -> Job | None:
        """The job a command of the batch is decided on, if the batch changed it.

        It is the job as the batch leaves it, under the ETag it had before the
        batch: a later command of the batch carries that ETag (or the
        wildcard), since its sender cannot know the ETags the batch makes.
        """
        job = self.jobs.get(job_id)
        before = self.before.get(job_id)
        if job is None or before is None:
            return job
        return attrs.evolve(job, etag=before)

    def add(self, command: Command, change: Change) -> None:
        """Take ``change``, decided for ``command``, as the batch's next change."""
        job_id = change.job.id
        if job_id in self.jobs:
            # Decided on the job as shown: it follows the batch's own last change of it.
            change = change.expecting(self.jobs[job_id].etag)
        else:
            self.before[job_id] = change.expected_etag
        self.jobs[job_id] = change.job
        if change.request is not None:
            self.requests[change.request.request_id] = change.request
        self.changes.append(change)
        self.commands.append(command)

    def refused(self, error: JobledgerError) -> int | None:
        """The position among :attr:`changes` of the change ``error`` refused, if it says which."""
        for at, change in enumerate(self.changes):
            if isinstance(error, RequestIdConflictError):
                if change.request is not None and change.request.request_id == error.request_id:
                    return at
            elif change.job.id == getattr(error, "job_id", None):
                return at
        return None


class _CommandInBatch:
    """The commands of a batch, one after the other, decided on the jobs as the batch leaves them.

    Its storage answers from the jobs and request records of the batch, and
    takes the command's change into the batch rather than saving it; what
    the batch does not have, it asks the driver's storage.
    """

    __slots__ = ("batch", "command")

    def __init__(self, batch: _Batch) -> None:
        self.batch = batch
        #: The command being decided (set before each).
        self.command: Command | None = None

    def storage(self) -> Storage:
        """This command's storage."""
        return Storage(
            recall=self.recall,
            load=self.load,
            find_request=self.find_request,
            save=self.save,
            save_all=self.batch.storage.save_all,
            pause=self.batch.storage.pause,
        )

    def recall(self, job_id: str) -> Job | None:
        """The job as the batch leaves it, or as the driver remembers it (when the batch may)."""
        batch = self.batch
        if job_id in batch.jobs:
            return batch.shown(job_id)
        if not batch.recall:
            return None
        job = batch.storage.recall(job_id)
        if job is not None:
            batch.recalled = True
        return job

    def load(self, job_id: str) -> Job:
        """The job as the batch leaves it, or as stored."""
        batch = self.batch
        if job_id in batch.jobs:
            return batch.shown(job_id)  # type: ignore[return-value]  # the batch has it
        return batch.storage.load(job_id)

    def find_request(self, request_id: str) -> RequestRecord | None:
        """The record of ``request_id``: the batch's, or the stored one."""
        batch = self.batch
        if request_id in batch.requests:
            return batch.requests[request_id]
        return batch.storage.find_request(request_id)

    def save(self, change: Change) -> None:
        """Take ``change`` into the batch.

        Raises:
            JobAlreadyExistsError: it starts a job the batch has, as its save would.
        """
        if change.expected_etag is None and change.job.id in self.batch.jobs:
            raise JobAlreadyExistsError(change.job.id)
        assert self.command is not None  # noqa: S101  (set before each command is decided)
        self.batch.add(self.command, change)


def handle_all(commands: Sequence[Command], handling: Handling) -> tuple[Handled, ...]:
    """Carry out ``commands`` as one atomic batch, as ``handling`` says; what each came to.

    Each command is decided as :meth:`Handling.one` decides it, in order, on
    the jobs as the commands before it leave them (see :meth:`_Batch.shown`);
    the changes are saved together with one ``storage.save_all``. When that is
    refused, the batch is decided again from the start, as :meth:`Handling.one`
    would decide its refused command again: without remembered jobs when it
    used some (at the same times and with the same ids), after a twin's answer
    when the refused command's twin committed, or after a pause when the
    refused command carries the wildcard ETag (up to :data:`WILDCARD_ATTEMPTS`
    times).

    Raises:
        JobledgerError: the first command's refusal, or the save's; a refused
            :class:`~jobledger.ConcurrencyError` names the ETag its command
            carried. A refusal traced to one command carries its position in
            ``commands`` as :attr:`~jobledger.JobledgerError.batch_index`.
    """
    commands = tuple(commands)
    storage, clock, new_id, new_tag = (
        handling.storage,
        handling.clock,
        handling.new_id,
        handling.new_tag,
    )
    recall = handling.recall
    attempts = 0
    times, ids, tags = _drawing(clock, new_id, new_tag, recall=recall)
    while True:
        attempts += 1
        batch = _Batch(storage, recall=recall)
        in_batch = _CommandInBatch(batch)
        # Asked for recalls when remembered jobs may be used (the batch's storage
        # answers them by its own rule); otherwise its load answers the jobs
        # the batch changed as its recall would, one call sooner.
        deciding = Handling(
            in_batch.storage(),
            clock=times,
            new_id=ids,
            new_tag=tags,
            limits=handling.limits,
            recall=recall,
        )
        handled: list[Handled] = []
        sources: list[int] = []  # the position in ``commands`` of each change's command
        for index, command in enumerate(commands):
            in_batch.command = command
            try:
                one = deciding.one(command)
            except JobledgerError as error:
                _name_refused(error, index)
                raise
            sources.extend([index] * (len(batch.changes) - len(sources)))
            handled.append(one)
        if not batch.changes:
            return tuple(handled)
        try:
            storage.save_all(tuple(batch.changes))
        except JobledgerError as error:
            if batch.recalled and isinstance(error, _STALE_COPY_ERRORS):
                # A remembered job was behind the stored one: decide the batch
                # again on the jobs as stored, at the same times, with the same ids.
                attempts -= 1
                recall = False
                assert isinstance(times, _Recording)  # noqa: S101  (recorded, since it may recall)
                assert isinstance(ids, _Recording)  # noqa: S101
                assert isinstance(tags, _Recording)  # noqa: S101
                times = _Replay(times.drawn, clock)
                ids = _Replay(ids.drawn, new_id)
                tags = _Replay(tags.drawn, new_tag)
                continue
            recall = False
            times, ids, tags = clock, new_id, new_tag
            at = batch.refused(error)
            named = None if at is None else sources[at]
            try:
                retry = _batch_may_retry(
                    error, None if at is None else batch.commands[at], attempts, storage
                )
            except JobledgerError as carried:
                _name_refused(carried, named)
                raise
            if retry:
                continue
            _name_refused(error, named)
            raise
        return tuple(handled)


def _drawing(
    clock: Callable[[], datetime],
    new_id: Callable[[], str],
    new_tag: Callable[[], str],
    *,
    recall: bool,
) -> tuple[Callable[[], datetime], Callable[[], str], Callable[[], str]]:
    """The clock and id factories an attempt of a batch decides with.

    Recorded when the attempt may use remembered jobs, so that, if one was
    stale, the batch is decided again at the same times with the same ids;
    as they are otherwise.
    """
    if not recall:
        return clock, new_id, new_tag
    return _Recording(clock), _Recording(new_id), _Recording(new_tag)


def _name_refused(error: JobledgerError, index: int | None) -> None:
    """Name the command at ``index`` of its batch as the one ``error`` refused (unless storage)."""
    if not isinstance(error, StorageError):
        error.batch_index = index


def _batch_may_retry(
    error: JobledgerError, culprit: Command | None, attempts: int, storage: Storage
) -> bool:
    """Whether a batch refused with ``error`` for ``culprit`` is to be decided again.

    Raises:
        ConcurrencyError: a wildcard ``culprit`` that ran out of attempts, named
            with the wildcard it carried.
    """
    if culprit is None or not isinstance(error, _TWIN_ERRORS):
        return False
    if culprit.request_id is not None:
        # A twin of the refused command may have committed first: the batch
        # decided again answers it from its record.
        record = storage.find_request(culprit.request_id)
        if isinstance(record, RequestRecord):
            return True
    if not isinstance(error, ConcurrencyError) or isinstance(culprit, StartJob):
        return False
    if _wildcard_may_retry(culprit, attempts):
        storage.pause(_backoff(attempts))
        return True
    if culprit.etag != error.expected_etag:
        raise _as_carried(error, culprit) from error
    return False
