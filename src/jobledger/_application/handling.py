"""How a command is handled, written once for every kind of driver.

:func:`handling` is a generator that yields the storage steps it needs
(:class:`Recall`, :class:`Load`, :class:`FindRequest`, :class:`Save`) and
receives their results.
The synchronous :class:`~jobledger.Jobs` drives it with a repository; an
asyncio facade can drive the very same generator with ``await``.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, NamedTuple, TypeAlias

from jobledger._core.commands import ANY_ETAG, StartJob
from jobledger._core.decide import (
    Change,
    RequestRecord,
    check_keys,
    command_kind,
    decide_checked,
    fingerprint,
)
from jobledger._core.errors import (
    ConcurrencyError,
    InvalidJobDataError,
    InvalidTransitionError,
    JobAlreadyExistsError,
    JobledgerError,
    RequestIdConflictError,
)
from jobledger._core.job import Job

if TYPE_CHECKING:
    from collections.abc import Callable, Generator
    from datetime import datetime

    from jobledger._core.commands import Command
    from jobledger._core.jsondoc import Limits

__all__ = [
    "FindRequest",
    "Handled",
    "Load",
    "Pause",
    "Recall",
    "Save",
    "Step",
    "drive",
    "handling",
]

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


class Pause(NamedTuple):
    """Step: wait ``seconds`` before going on (answer: ignored)."""

    seconds: float


Step: TypeAlias = Recall | Load | FindRequest | Save | Pause


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
    if record.fingerprint != fingerprint(command):
        raise RequestIdConflictError(record.request_id)
    return Handled(record.job, None)


def handling(
    command: Command,
    *,
    clock: Callable[[], datetime],
    new_id: Callable[[], str],
    limits: Limits,
) -> Generator[Step, object, Handled]:
    """Handle ``command``: the steps to take, and what they came to.

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
    recall = not isinstance(command, StartJob)
    now: datetime | None = None
    ids = new_id
    while True:
        attempts += 1
        job, recalled = yield from _job_for(command, recall=recall)
        if now is None:
            now = clock()
        change: Change | None = None
        try:
            change = decide_checked(job, command, kind, now=now, new_id=ids, limits=limits)
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
                    ids = _Replay((change.job.etag, change.event.event_id), new_id)
                continue
            now, ids = None, new_id
            answer = yield from _after_refusal(error, command, attempts)
            if answer is None:
                continue
            return answer
        return Handled(change.job, change)


class _Replay:
    """Ids handed out again, then new ones: for a decision taken over after one that wrote nothing.

    A change's ids are drawn in one order (its ETag, then its event id; see
    :func:`~jobledger._core.decide.decide`), so handing them out again in that
    order gives the new decision the ids the first one took; a decision that
    failed before it drew any leaves none to hand out.
    """

    def __init__(self, drawn: tuple[str, ...], new_id: Callable[[], str]) -> None:
        self._drawn = list(drawn)
        self._new_id = new_id

    def __call__(self) -> str:
        return self._drawn.pop(0) if self._drawn else self._new_id()


def _job_for(command: Command, *, recall: bool) -> Generator[Step, object, tuple[Job | None, bool]]:
    """The job ``command`` is decided on (``None`` for a start), and whether it was recalled."""
    if isinstance(command, StartJob):
        return None, False
    if recall:
        job = yield Recall(command.job_id)
        if job is not None:
            assert isinstance(job, Job)  # noqa: S101  (the driver's contract)
            return job, True
    job = yield Load(command.job_id)
    assert isinstance(job, Job)  # noqa: S101  (the driver's contract)
    return job, False


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
        # Back off with jitter, so racing writers stop colliding in lockstep.
        ceiling = min(WILDCARD_MAX_PAUSE, 0.0005 * 2**attempts)
        yield Pause(random.uniform(0, ceiling))  # noqa: S311  (jitter, not secrecy)
        return None
    if (
        isinstance(error, ConcurrencyError)
        and not isinstance(command, StartJob)
        and command.etag == ANY_ETAG
    ):
        # Say what the command carried, not the version it last decided on.
        raise ConcurrencyError(error.job_id, ANY_ETAG, error.current_etag) from error
    raise error


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


def drive(steps: Generator[Step, object, Handled], perform: Callable[[Step], object]) -> Handled:
    """Run a :func:`handling` generator to the end, performing each step.

    A :class:`~jobledger.JobledgerError` raised by ``perform`` is thrown back
    into the generator, which may handle it; other exceptions propagate.
    """
    reply: object = None
    error: JobledgerError | None = None
    while True:
        try:
            step = steps.send(reply) if error is None else steps.throw(error)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        try:
            reply, error = perform(step), None
        except JobledgerError as err:
            reply, error = None, err
