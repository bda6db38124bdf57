"""How a command, or a batch of them, is handled, written once for every kind of driver.

:func:`handling` is a generator that yields the storage steps it needs
(:class:`Recall`, :class:`Load`, :class:`FindRequest`, :class:`Save`) and
receives their results; :func:`handling_all` does the same for a batch, which
it saves with one :class:`SaveAll`.
The synchronous :class:`~jobledger.Jobs` drives it with a repository; an
asyncio facade can drive the very same generator with ``await``.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Generic, NamedTuple, TypeAlias, TypeVar

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

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Sequence
    from datetime import datetime

    from jobledger._core.jsondoc import Limits

__all__ = [
    "FindRequest",
    "Handled",
    "Load",
    "Pause",
    "Recall",
    "Save",
    "SaveAll",
    "Step",
    "drive",
    "handling",
    "handling_all",
]

_T = TypeVar("_T")

#: How often a command with the wildcard ETag is decided before it gives up.
WILDCARD_ATTEMPTS = 100
#: The longest pause between two attempts of a wildcard command, in seconds.
WILDCARD_MAX_PAUSE = 0.05


# Steps and their outcome are named tuples rather than attrs classes: one of
# each is made for every command, and a tuple is the cheapest immutable value.


class Recall(NamedTuple):
    """Step: the job with ``job_id`` as the driver last saved it, if it remembers it.

    Answer: that :class:`Job`, or ``None``. No I/O: a driver that remembers
    nothing answers ``None``, and the job is loaded.
    """

    job_id: str


class Load(NamedTuple):
    """Step: load the job with ``job_id`` (answer: the :class:`Job`)."""

    job_id: str


class FindRequest(NamedTuple):
    """Step: look up a request record (answer: the record or ``None``)."""

    request_id: str


class Save(NamedTuple):
    """Step: save a change atomically (answer: ignored)."""

    change: Change


class SaveAll(NamedTuple):
    """Step: save ``changes`` as one atomic unit, in order (answer: ignored)."""

    changes: tuple[Change, ...]


class Pause(NamedTuple):
    """Step: wait ``seconds`` before going on (answer: ignored)."""

    seconds: float


Step: TypeAlias = Recall | Load | FindRequest | Save | SaveAll | Pause


class Handled(NamedTuple):
    """What handling a command came to.

    Attributes:
        job: The job as the command left it.
        change: The change that was saved, or ``None`` when the command was a
            retry answered from its request record.
    """

    job: Job
    change: Change | None


def _answer(record: RequestRecord, command: Command) -> Handled:
    if not record.answers(command):
        raise RequestIdConflictError(record.request_id)
    return Handled(record.job, None)


def handling(  # noqa: C901  (every command's path, kept in one frame on purpose)
    command: Command,
    *,
    clock: Callable[[], datetime],
    new_id: Callable[[], str],
    limits: Limits,
    new_tag: Callable[[], str] | None = None,
    recall: bool = True,
) -> Generator[Step, object, Handled]:
    """Handle ``command``: the steps to take, and what they came to.

    Job ids come from ``new_id``, ETags and event ids from ``new_tag``
    (``new_id`` when ``None``). A driver whose loads cost no more than a
    recall (an in-memory repository) passes ``recall=False`` and is asked for
    no :class:`Recall`.

    A change command is first decided on the job the driver remembers saving
    (:class:`Recall`), which spares a read when the driver is the job's only
    writer. The save's compare-and-set refuses a remembered job that another
    writer has changed since; the command is then decided again on the job as
    loaded, so what it comes to is what it would have come to without the
    recall.

    Raises:
        JobledgerError: whatever :func:`~jobledger._core.decide.decide` or the
            repository raise; a wildcard command is decided again on the new
            version when it loses a race, after a short pause with jitter, up to
            :data:`WILDCARD_ATTEMPTS` times.
    """
    kind = command_kind(command)  # refuses what is not a command before anything is read
    check_keys(command, limits)
    request_id = command.request_id
    if request_id is not None:
        record = yield FindRequest(request_id)
        if record is not None:
            assert isinstance(record, RequestRecord)  # noqa: S101  (the driver's contract)
            return _answer(record, command)
    attempts = 0
    starting = isinstance(command, StartJob)
    recall = recall and not starting
    now: datetime | None = None
    tags = new_tag = new_id if new_tag is None else new_tag
    while True:
        attempts += 1
        # The job the command is decided on (None for a start), and whether it
        # was recalled; inline rather than a sub-generator: it is every command's.
        job: object = None
        recalled = False
        if not starting:
            if recall:
                job = yield Recall(command.job_id)  # type: ignore[arg-type]  # not a start
                recalled = job is not None
            if job is None:
                job = yield Load(command.job_id)  # type: ignore[arg-type]  # not a start
            assert isinstance(job, Job)  # noqa: S101  (the driver's contract)
        if now is None:
            now = clock()
        change: Change | None = None
        try:
            change = decide_checked(
                job,  # type: ignore[arg-type]  # a Job, or None for a start
                command,
                kind,
                now=now,
                new_id=new_id,
                limits=limits,
                new_tag=tags,
            )
            yield Save(change)
        except JobledgerError as error:
            recall = False
            if recalled and isinstance(error, _STALE_COPY_ERRORS):
                # The remembered job may be behind the stored one (another writer
                # changed it): decide again on the job as stored, at the same
                # time and with the same ids, since nothing was written. This is
                # no attempt of a wildcard command's.
                attempts -= 1
                if change is not None:
                    tags = _Replay((change.job.etag, _event_id(change)), new_tag)
                continue
            now, tags = None, new_tag
            answer = yield from _after_refusal(error, command, attempts)
            if answer is None:
                continue
            return answer
        return Handled(change.job, change)


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
    error: JobledgerError, command: Command, attempts: int
) -> Generator[Step, object, Handled | None]:
    """What a command refused with ``error`` comes to: a twin's answer, or ``None`` to try again.

    Raises:
        JobledgerError: ``error``, when neither applies.
    """
    if not isinstance(error, _TWIN_ERRORS):
        raise error
    if command.request_id is not None:
        # A twin of this command may have committed between our look-up and our
        # save (or our load, when it ended the job); if so, it is the answer.
        record = yield FindRequest(command.request_id)
        if isinstance(record, RequestRecord):
            return _answer(record, command)
    if isinstance(error, InvalidTransitionError):
        raise error
    if _wildcard_may_retry(command, attempts):
        yield _backoff(attempts)
        return None
    if (
        isinstance(error, ConcurrencyError)
        and not isinstance(command, StartJob)
        and command.etag == ANY_ETAG
    ):
        raise _as_carried(error, command) from error
    raise error


def _backoff(attempts: int) -> Pause:
    """The pause before a wildcard command's next attempt.

    It grows with the attempts and has jitter, so racing writers stop
    colliding in lockstep.
    """
    ceiling = min(WILDCARD_MAX_PAUSE, 0.0005 * 2**attempts)
    return Pause(random.uniform(0, ceiling))  # noqa: S311  (jitter, not secrecy)


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


def drive(steps: Generator[Step, object, _T], perform: Callable[[Step], object]) -> _T:
    """Run a :func:`handling` or :func:`handling_all` generator to the end, performing each step.

    A :class:`~jobledger.JobledgerError` raised by ``perform`` is thrown back
    into the generator, which may handle it; other exceptions propagate.
    """
    reply: object = None
    error: JobledgerError | None = None
    while True:
        try:
            step = steps.send(reply) if error is None else steps.throw(error)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]  # the generator's own result
        try:
            reply, error = perform(step), None
        except JobledgerError as err:
            reply, error = None, err


@attrs.define
class _Batch:
    """What a batch has decided so far: its changes, and the jobs as they leave them.

    Attributes:
        recall: Whether jobs the driver remembers may be used (see :class:`Recall`).
        recalled: Whether a decision used such a job.
        changes: The changes decided so far, in command order, each expecting
            the ETag the batch's changes before it leave its job with.
        commands: The command of each change.
        jobs: Each job the batch changed, as it leaves it.
        before: The ETag each job changed by the batch had before it (``None``
            for a job the batch starts).
        requests: The records of the request ids the batch's changes carry.
    """

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

    def deciding(
        self,
        command: Command,
        *,
        clock: Callable[[], datetime],
        new_id: Callable[[], str],
        limits: Limits,
        new_tag: Callable[[], str] | None = None,
    ) -> Generator[Step, object, Handled]:
        """Decide ``command`` as :func:`handling` does, on the jobs as the batch leaves them.

        Steps the batch can answer itself are answered here; its change is
        taken into the batch rather than saved.
        """
        steps = handling(command, clock=clock, new_id=new_id, limits=limits, new_tag=new_tag)
        reply: object = None
        error: JobledgerError | None = None
        while True:
            try:
                step = steps.send(reply) if error is None else steps.throw(error)
            except StopIteration as stop:
                handled: Handled = stop.value
                return handled
            reply, error = None, None
            if isinstance(step, Save):
                if step.change.expected_etag is None and step.change.job.id in self.jobs:
                    # A start of a job the batch has: refused as its save would be.
                    error = JobAlreadyExistsError(step.change.job.id)
                else:
                    self.add(command, step.change)
                continue
            if isinstance(step, (Recall, Load)) and step.job_id in self.jobs:
                reply = self.shown(step.job_id)
                continue
            if isinstance(step, Recall) and not self.recall:
                continue
            if isinstance(step, FindRequest) and step.request_id in self.requests:
                reply = self.requests[step.request_id]
                continue
            try:
                reply = yield step
            except JobledgerError as err:
                error = err
            if isinstance(step, Recall) and reply is not None:
                self.recalled = True


def handling_all(
    commands: Sequence[Command],
    *,
    clock: Callable[[], datetime],
    new_id: Callable[[], str],
    limits: Limits,
    new_tag: Callable[[], str] | None = None,
    recall: bool = True,
) -> Generator[Step, object, tuple[Handled, ...]]:
    """Handle ``commands`` as one atomic batch: the steps to take, and what each came to.

    Each command is decided as :func:`handling` decides it, in order, on the
    jobs as the commands before it leave them (see :meth:`_Batch.shown`); the
    changes are saved together with one :class:`SaveAll`. When that is refused,
    the batch is decided again from the start, as :func:`handling` would decide
    its refused command again: without remembered jobs when it used some (at
    the same times and with the same ids), after a twin's answer when the
    refused command's twin committed, or after a pause when the refused command
    carries the wildcard ETag (up to :data:`WILDCARD_ATTEMPTS` times).

    Raises:
        JobledgerError: the first command's refusal, or the save's; a refused
            :class:`~jobledger.ConcurrencyError` names the ETag its command
            carried. A refusal traced to one command carries its position in
            ``commands`` as :attr:`~jobledger.JobledgerError.batch_index`.
    """
    commands = tuple(commands)
    attempts = 0
    tag = new_id if new_tag is None else new_tag
    times, ids, tags = _Recording(clock), _Recording(new_id), _Recording(tag)
    while True:
        attempts += 1
        batch = _Batch(recall=recall)
        handled: list[Handled] = []
        sources: list[int] = []  # the position in ``commands`` of each change's command
        for index, command in enumerate(commands):
            try:
                one = yield from batch.deciding(
                    command, clock=times, new_id=ids, limits=limits, new_tag=tags
                )
            except JobledgerError as error:
                _name_refused(error, index)
                raise
            sources.extend([index] * (len(batch.changes) - len(sources)))
            handled.append(one)
        if not batch.changes:
            return tuple(handled)
        try:
            yield SaveAll(tuple(batch.changes))
        except JobledgerError as error:
            if batch.recalled and isinstance(error, _STALE_COPY_ERRORS):
                # A remembered job was behind the stored one: decide the batch
                # again on the jobs as stored, at the same times, with the same ids.
                attempts -= 1
                recall = False
                times = _Recording(_Replay(times.drawn, clock))
                ids = _Recording(_Replay(ids.drawn, new_id))
                tags = _Recording(_Replay(tags.drawn, tag))
                continue
            recall = False
            times, ids, tags = _Recording(clock), _Recording(new_id), _Recording(tag)
            at = batch.refused(error)
            named = None if at is None else sources[at]
            try:
                retry = yield from _batch_may_retry(
                    error, None if at is None else batch.commands[at], attempts
                )
            except JobledgerError as carried:
                _name_refused(carried, named)
                raise
            if retry:
                continue
            _name_refused(error, named)
            raise
        return tuple(handled)


def _name_refused(error: JobledgerError, index: int | None) -> None:
    """Name the command at ``index`` of its batch as the one ``error`` refused (unless storage)."""
    if not isinstance(error, StorageError):
        error.batch_index = index


def _batch_may_retry(
    error: JobledgerError, culprit: Command | None, attempts: int
) -> Generator[Step, object, bool]:
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
        record = yield FindRequest(culprit.request_id)
        if isinstance(record, RequestRecord):
            return True
    if not isinstance(error, ConcurrencyError) or isinstance(culprit, StartJob):
        return False
    if _wildcard_may_retry(culprit, attempts):
        yield _backoff(attempts)
        return True
    if culprit.etag != error.expected_etag:
        raise _as_carried(error, culprit) from error
    return False
