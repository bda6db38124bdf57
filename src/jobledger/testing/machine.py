"""A hypothesis state machine that proves a ledger keeps its ETag and lifecycle rules.

:func:`ledger_machine` builds a :class:`~hypothesis.stateful.RuleBasedStateMachine`
that drives :class:`~jobledger.Jobs` over a repository you provide. It sends every
command (start, update, complete, fail, cancel) with fresh, stale and wildcard
ETags, to active, finished and unknown jobs, with and without request ids, with
data the ledger must refuse, and as the loser of a race (a writer that read an
earlier version, whose save the repository must refuse), alternating between
two ledgers on the one repository as two processes would. A small reference model
of its own (plain dicts) predicts each outcome: the job afterwards, or the error
and that nothing changed. After every step it checks, for every job, that the
update log is gap-free and only grows, that replaying it gives the current job,
that ETags change exactly with versions and are never reused, and that the
published events and the repository's feed match the logs one to one.

Run it against the in-memory backend, or prove your own storage adapter::

    TestMyLedger = ledger_machine(lambda: MyRepository(fresh_database())).TestCase

>>> from jobledger import InMemoryRepository
>>> from jobledger.testing.machine import ledger_machine
>>> TestInMemoryLedger = ledger_machine(InMemoryRepository).TestCase
>>> TestInMemoryLedger.__name__
'LedgerMachine.TestCase'
"""

from __future__ import annotations

import enum
import itertools
import json
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn, TypeAlias, TypeVar, cast

import attrs
import hypothesis
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from jobledger import (
    ANY_ETAG,
    CancelJob,
    ChangeCommand,
    Command,
    CommandKind,
    CompleteJob,
    ConcurrencyError,
    FailJob,
    FeedEntry,
    InvalidJobDataError,
    InvalidTransitionError,
    Job,
    JobAlreadyExistsError,
    JobCanceled,
    JobCompleted,
    JobEvent,
    JobFailed,
    JobledgerError,
    JobNotFoundError,
    JobPhase,
    Jobs,
    JobStarted,
    JobStatus,
    JobUpdate,
    JobUpdated,
    RequestIdConflictError,
    StartJob,
    UpdateJob,
    UpdateType,
    thaw,
)
from jobledger.testing import strategies as jst
from jobledger.testing.fakes import ManualClock, SequentialIds

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from jobledger import Change, JobPage, JobQuery, Repository, RequestRecord

__all__ = ["KnownEtag", "ledger_machine"]

R = TypeVar("R", bound="Repository")

#: Ids the machine's id factory makes start with this; the job ids the machine
#: chooses itself never do, so a start without a job id cannot hit one of them.
_GENERATED_PREFIX = "gen-"

_TERMINAL_STATUSES = frozenset(
    {JobStatus.COMPLETED.value, JobStatus.FAILED.value, JobStatus.CANCELED.value}
)

_UPDATE_TYPE: dict[type[ChangeCommand], UpdateType] = {
    UpdateJob: UpdateType.UPDATED,
    CompleteJob: UpdateType.COMPLETED,
    FailJob: UpdateType.FAILED,
    CancelJob: UpdateType.CANCELED,
}

_COMMAND_KIND: dict[type[ChangeCommand], CommandKind] = {
    UpdateJob: CommandKind.UPDATE,
    CompleteJob: CommandKind.COMPLETE,
    FailJob: CommandKind.FAIL,
    CancelJob: CommandKind.CANCEL,
}

_FINAL_STATUS: dict[type[ChangeCommand], str] = {
    CompleteJob: JobStatus.COMPLETED.value,
    FailJob: JobStatus.FAILED.value,
    CancelJob: JobStatus.CANCELED.value,
}

_EVENT_TYPE: dict[UpdateType, type[JobEvent]] = {
    UpdateType.UPDATED: JobUpdated,
    UpdateType.COMPLETED: JobCompleted,
    UpdateType.FAILED: JobFailed,
    UpdateType.CANCELED: JobCanceled,
}


@attrs.frozen
class KnownEtag:
    """An ETag the machine saw a job have: current when sent now, or stale.

    Attributes:
        job_id: The job.
        etag: The ETag it had when the machine read or changed it.
    """

    job_id: str
    etag: str


class _TargetJob(enum.Enum):
    """Which job a change goes to, with which ETag."""

    #: An active job, with its current ETag.
    FRESH = "an active job, its current etag"
    #: An active job, with :data:`~jobledger.ANY_ETAG`.
    WILDCARD = "an active job, the wildcard"
    #: An active job, with an ETag it had before (its current one while it has had no other).
    STALE = "an active job, a stale etag"
    #: A job that does not exist.
    UNKNOWN = "an unknown job"


class _Resend(enum.Enum):
    """What a command that reuses a recorded request id is."""

    SAME_COMMAND = "same command"
    OTHER_FIELDS = "same kind, other fields"
    OTHER_ACTOR = "same fields, another actor"
    OTHER_KIND = "a cancel"


class _RequestChoice(enum.Enum):
    """Which request id a command carries."""

    NONE = "none"
    NEW = "new"
    #: The id a refused command carried: a refusal must not have recorded it.
    REFUSED = "refused"


def _fail(message: str) -> NoReturn:
    # An explicit raise, not `assert`: this module is library code, which pytest
    # does not rewrite and `python -O` would strip.
    raise AssertionError(message)


def _require(condition: bool, message: str) -> None:  # noqa: FBT001  (reads as a check)
    if not condition:
        _fail(message)


def _require_equal(expected: object, actual: object, what: str) -> None:
    if expected != actual:
        _fail(f"{what}: expected {expected!r}, got {actual!r}")


def _exact(value: object) -> str:
    """JSON text that tells ``1``, ``1.0`` and ``true`` apart, unlike ``==``."""
    return json.dumps(value, sort_keys=True)


def _reference_merge_patch(target: Any, patch: Any) -> Any:  # noqa: ANN401  (plain JSON)
    """RFC 7396's own algorithm, on plain values: the model's independent merge."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _reference_merge_patch(result.get(key), value)
    return result


def _same_command(first: Command, second: Command) -> bool:
    """Whether two commands are the same command, their request ids aside."""

    def fields(command: Command) -> str:
        values = {
            field.name: getattr(command, field.name)
            for field in attrs.fields(type(command))
            if field.name != "request_id"
        }
        return _exact([type(command).__name__, values])

    return fields(first) == fields(second)


@attrs.frozen
class _ModelUpdate:
    update_id: int
    update_type: UpdateType
    status: str
    state_update: Any
    display_name: str | None
    description: str | None
    actor: str | None


@attrs.define
class _ModelJob:
    """What the model knows of one job, in plain values."""

    id: str
    service: str
    entity: str
    type: str
    input: Any
    display_name: str
    description: str
    status: str
    state: dict[str, Any]
    version: int
    etag: str
    log: list[_ModelUpdate]
    started_by: str | None
    #: The job as it was at each version before this one, oldest first.
    history: list[Job] = attrs.Factory(list)
    #: The job as the ledger last returned it.
    latest: Job | None = None

    @property
    def stale_etags(self) -> list[str]:
        return [job.etag for job in self.history]

    @property
    def phase(self) -> JobPhase:
        return JobPhase.of_status(self.status)


@attrs.frozen
class _Request:
    """A command that succeeded with a request id, and the job it answered with."""

    command: Command
    via_facade: bool
    job: Job


@attrs.frozen
class _Refusal:
    """The model expects this error, with these attribute values."""

    error: type[JobledgerError]
    facts: Mapping[str, object]


@attrs.frozen
class _Answer:
    """The model expects a retry: this job back, and nothing written."""

    job: Job


@attrs.frozen
class _Accept:
    """The model expects the command to be carried out."""


_Prediction: TypeAlias = _Refusal | _Answer | _Accept

# The machine's own job ids never look like the ids its id factory makes.
_OWN_JOB_IDS = st.one_of(
    st.none(), jst.names().filter(lambda name: not name.startswith(_GENERATED_PREFIX))
)
# UUIDs are never names() of 12 characters or fewer, nor generated ids: unknown.
_UNKNOWN_JOB_IDS = st.uuids().map(str)
_PLACEHOLDER = "placeholder"
_STARTS = jst.start_commands(job_id=None, request_id=None)
_UPDATES = jst.update_commands(job_id=_PLACEHOLDER, etag=_PLACEHOLDER, request_id=None)
# Updates more often than the three commands that end a job, so jobs live a while.
_CHANGES: st.SearchStrategy[ChangeCommand] = st.one_of(
    _UPDATES,
    _UPDATES,
    _UPDATES,
    jst.change_commands(job_id=_PLACEHOLDER, etag=_PLACEHOLDER, request_id=None),
)
_REQUESTS = st.sampled_from(_RequestChoice)
_INVALID_UPDATES = st.one_of(
    st.sampled_from(sorted(_TERMINAL_STATUSES)).map(
        lambda status: UpdateJob(job_id=_PLACEHOLDER, etag=_PLACEHOLDER, status=status)
    ),
    jst.json_values()
    .filter(lambda value: not isinstance(value, (dict, type(None))))
    .map(lambda patch: UpdateJob(job_id=_PLACEHOLDER, etag=_PLACEHOLDER, state_update=patch)),
)


class _EarlierRead:
    """A repository seen by a writer that read one job before its latest changes."""

    def __init__(self, repository: Repository, earlier: Job) -> None:
        self._repository = repository
        self._earlier = earlier

    def get(self, job_id: str) -> Job:
        if job_id == self._earlier.id:
            return self._earlier
        return self._repository.get(job_id)

    def updates(self, job_id: str, *, after: int = 0) -> Sequence[JobUpdate]:
        return self._repository.updates(job_id, after=after)

    def find(self, query: JobQuery) -> JobPage:
        return self._repository.find(query)

    def find_request(self, request_id: str) -> RequestRecord | None:
        return self._repository.find_request(request_id)

    def save(self, change: Change) -> int:
        return self._repository.save(change)

    def read_feed(self, *, after: int = 0, limit: int = 1000) -> Sequence[FeedEntry]:
        return self._repository.read_feed(after=after, limit=limit)

    def feed_head(self) -> int:
        return self._repository.feed_head()

    def load_checkpoint(self, name: str) -> int:
        return self._repository.load_checkpoint(name)

    def save_checkpoint(self, name: str, position: int) -> None:
        self._repository.save_checkpoint(name, position)


class _LedgerMachine(RuleBasedStateMachine):
    """Drives a ledger and a reference model side by side; see :func:`ledger_machine`."""

    job_ids: Bundle[str] = Bundle("job_ids")
    known_etags: Bundle[KnownEtag] = Bundle("known_etags")

    def __init__(self) -> None:
        super().__init__()
        self.repository = self.new_repository()
        # Each reading a second later, so every change has its own time.
        self.clock = ManualClock(tick=timedelta(seconds=1))
        self.ids = SequentialIds(_GENERATED_PREFIX.rstrip("-"))
        self.jobs = Jobs(self.repository, clock=self.clock, id_factory=self.ids, delivery="inline")
        # Commands alternate between two ledgers on the one repository, as two
        # processes would send them: what each remembers of the jobs it saved
        # goes stale whenever the other writes.
        self.ledgers = (
            self.jobs,
            Jobs(self.repository, clock=self.clock, id_factory=self.ids, delivery="inline"),
        )
        self.sent = 0
        self.published: list[JobEvent] = []
        for ledger in self.ledgers:
            ledger.subscribe(self.published.append)
        self.model: dict[str, _ModelJob] = {}
        self.requests: dict[str, _Request] = {}
        self.refused_request_ids: set[str] = set()
        self.request_numbers = itertools.count(1)
        # What the invariant saw last time, per job: to prove logs only grow and
        # ETags change exactly when versions do.
        self.seen_logs: dict[str, tuple[JobUpdate, ...]] = {}
        self.seen_versions: dict[str, tuple[int, str]] = {}
        self.seen_etags: dict[str, set[str]] = {}

    def new_repository(self) -> Repository:
        """Return a fresh, empty repository (the factory overrides this)."""
        raise NotImplementedError

    def dispose_repository(self, repository: Repository) -> None:
        """Release ``repository`` after a run (the factory overrides this)."""

    def teardown(self) -> None:
        """Release the repository."""
        self.dispose_repository(self.repository)

    # ------------------------------------------------------------------ rules

    @initialize(target=job_ids, command=_STARTS, job_id=_OWN_JOB_IDS, request=_REQUESTS)
    def start_first_job(
        self, *, command: StartJob, job_id: str | None, request: _RequestChoice
    ) -> str | MultipleResults[str]:
        """Start a job before any rule runs, so that every rule has a job to work on."""
        return self.start_job(command=command, job_id=job_id, request=request, facade=False)

    @rule(
        target=job_ids,
        command=_STARTS,
        job_id=_OWN_JOB_IDS,
        request=_REQUESTS,
        facade=st.booleans(),
    )
    def start_job(
        self, *, command: StartJob, job_id: str | None, request: _RequestChoice, facade: bool
    ) -> str | MultipleResults[str]:
        """Start a job, with or without its own id and a request id."""
        command = attrs.evolve(command, job_id=job_id, request_id=self.request_id(request))
        job = self.attempt(command, via_facade=facade)
        return multiple() if job is None else job.id

    @rule(job_id=job_ids, command=_STARTS, request=_REQUESTS)
    def start_existing_job(
        self, *, job_id: str, command: StartJob, request: _RequestChoice
    ) -> None:
        """Start a job with the id of one that exists: JobAlreadyExistsError."""
        command = attrs.evolve(command, job_id=job_id, request_id=self.request_id(request))
        self.attempt(command, via_facade=False)

    @rule(target=known_etags, job_id=job_ids)
    def read_job(self, job_id: str) -> KnownEtag:
        """Read a job, as a client does before changing it, and remember its ETag."""
        job = self.jobs.get(job_id)
        self.check_job(job, self.model[job_id])
        return KnownEtag(job_id, job.etag)

    # Hypothesis favours the rules it sorts first: those with no target bundle and
    # few arguments. The rule that moves jobs along is therefore one of them, and
    # draws its arguments itself, so that jobs get long logs within a few steps.
    @rule(data=st.data())
    def change_job(self, data: st.DataObject) -> None:
        """Change an active job with its current ETag, ``*`` or a stale one; or an unknown job."""
        target_job = data.draw(st.sampled_from(_TargetJob), label="target")
        command = data.draw(_CHANGES, label="command")
        request = data.draw(_REQUESTS, label="request id")
        facade = data.draw(st.booleans(), label="through the facade")
        if target_job is _TargetJob.UNKNOWN:
            job_id = data.draw(_UNKNOWN_JOB_IDS, label="unknown job id")
            self.change(command, job_id, ANY_ETAG, request, facade=facade)
            return
        # Once every job has ended, an ended one: the change is then refused.
        candidates = [job for job in self.model.values() if not job.phase.is_terminal]
        model = data.draw(st.sampled_from(candidates or list(self.model.values())), label="job")
        sent = model.etag
        if target_job is _TargetJob.WILDCARD:
            sent = ANY_ETAG
        elif target_job is _TargetJob.STALE and model.stale_etags:
            sent = data.draw(st.sampled_from(model.stale_etags), label="stale etag")
        self.change(command, model.id, sent, request, facade=facade)

    @precondition(lambda self: any(job.history for job in self.model.values()))
    @rule(data=st.data())
    def lose_race(self, data: st.DataObject) -> None:
        """Change a job as a writer that read an earlier version: its save must fail.

        The rival ledger reads the job as it was, so the command passes the
        decision and reaches the repository, whose compare-and-set must refuse
        it with ConcurrencyError, as it does for the loser of a real race.
        """
        candidates = [job for job in self.model.values() if job.history]
        model = data.draw(st.sampled_from(candidates), label="job")
        stale = data.draw(st.sampled_from(model.history), label="earlier read")
        command = data.draw(_CHANGES, label="command")
        command = attrs.evolve(command, job_id=model.id, etag=stale.etag)
        rival = Jobs(_EarlierRead(self.repository, stale), clock=self.clock, id_factory=self.ids)
        head, published = self.repository.feed_head(), len(self.published)
        expected = _Refusal(
            ConcurrencyError,
            {"job_id": model.id, "expected_etag": stale.etag, "current_etag": model.etag},
        )
        try:
            rival.handle(command)
        except JobledgerError as error:
            self.check_refusal(expected, command, error)
        else:
            _fail(f"{command!r}, decided on version {stale.version}, was saved")
        self.check_nothing_written(head, published, f"the lost race of {command!r}")

    @rule(
        target=known_etags,
        known=known_etags,
        wildcard=st.booleans(),
        command=_CHANGES,
        request=_REQUESTS,
        facade=st.booleans(),
    )
    def change_job_with_known_etag(
        self,
        *,
        known: KnownEtag,
        wildcard: bool,
        command: ChangeCommand,
        request: _RequestChoice,
        facade: bool,
    ) -> KnownEtag | MultipleResults[KnownEtag]:
        """Change a job, active or not, with an ETag seen earlier (current or stale) or ``*``."""
        sent = ANY_ETAG if wildcard else known.etag
        return self.change(command, known.job_id, sent, request, facade=facade)

    @rule(job_id=job_ids, command=_INVALID_UPDATES, wildcard=st.booleans())
    def update_with_invalid_data(self, *, job_id: str, command: UpdateJob, wildcard: bool) -> None:
        """Update with a terminal status or a non-object state update: InvalidJobDataError."""
        sent = ANY_ETAG if wildcard else self.model[job_id].etag
        self.change(command, job_id, sent, _RequestChoice.NEW, facade=False)

    @precondition(lambda self: bool(self.requests))
    @rule(data=st.data(), resend=st.sampled_from(_Resend), job_id=job_ids)
    def resend_request_id(self, *, data: st.DataObject, resend: _Resend, job_id: str) -> None:
        """Send a used request id again: with its command (a retry) or another one (a conflict)."""
        request_id = data.draw(st.sampled_from(sorted(self.requests)), label="request_id")
        request = self.requests[request_id]
        recorded = request.command
        if resend is _Resend.SAME_COMMAND:
            self.attempt(recorded, via_facade=request.via_facade)
            return
        command: Command
        if resend is _Resend.OTHER_FIELDS:
            description = f"{recorded.description or ''} (another command)"
            command = attrs.evolve(recorded, description=description)
        elif resend is _Resend.OTHER_ACTOR:
            actor = "someone else" if recorded.actor != "someone else" else "another one"
            command = attrs.evolve(recorded, actor=actor)
        else:
            command = CancelJob(job_id=job_id, etag=ANY_ETAG, request_id=request_id)
        self.attempt(command, via_facade=request.via_facade)

    # ------------------------------------------------------------- invariant

    @invariant()
    def ledger_keeps_its_rules(self) -> None:
        """Check every rule of the ledger, over every job, after every step."""
        self.check_feed()
        listed = {job.id for job in self.jobs.find(limit=1000).jobs}
        _require_equal(sorted(self.model), sorted(listed), "the ids of the jobs listed")
        for job_id, model in self.model.items():
            job = self.jobs.get(job_id)
            log = tuple(self.jobs.updates(job_id))
            started, changes = self.events_of(job_id)
            self.check_job(job, model)
            self.check_log_matches_model(log, model)
            self.check_update_ids(job_id, log)
            self.check_log_only_grows(job_id, log)
            self.check_etags(job, log, started)
            self.check_replay(job, log, started)
            self.check_events(job, log, changes)
        self.check_request_records()

    # ------------------------------------------------------- driving the ledger

    def request_id(self, choice: _RequestChoice) -> str | None:
        """The request id a command carries, as ``choice`` says."""
        if choice is _RequestChoice.NONE:
            return None
        if choice is _RequestChoice.REFUSED and self.refused_request_ids:
            return min(self.refused_request_ids)
        return f"request-{next(self.request_numbers)}"

    def change(
        self,
        command: ChangeCommand,
        job_id: str,
        etag: str,
        request: _RequestChoice,
        *,
        facade: bool,
    ) -> KnownEtag | MultipleResults[KnownEtag]:
        """Send ``command`` to ``job_id`` with ``etag``; the new ETag when it succeeds."""
        command = attrs.evolve(
            command, job_id=job_id, etag=etag, request_id=self.request_id(request)
        )
        job = self.attempt(command, via_facade=facade)
        return multiple() if job is None else KnownEtag(job.id, job.etag)

    def send(self, command: Command, *, via_facade: bool) -> Job:
        """Send ``command`` through :meth:`Jobs.handle` or the matching facade method."""
        self.sent += 1
        jobs = self.ledgers[self.sent % 2]
        if not via_facade:
            return jobs.handle(command)
        if isinstance(command, StartJob):
            return jobs.start(
                service=command.service,
                entity=command.entity,
                type=command.type,
                display_name=command.display_name,
                description=command.description,
                input=command.input,
                state=command.state,
                job_id=command.job_id,
                request_id=command.request_id,
                actor=command.actor,
            )
        if isinstance(command, CancelJob):
            return jobs.cancel(
                command.job_id,
                etag=command.etag,
                display_name=command.display_name,
                description=command.description,
                request_id=command.request_id,
                actor=command.actor,
            )
        if isinstance(command, UpdateJob):
            return jobs.update(
                command.job_id,
                etag=command.etag,
                status=command.status,
                display_name=command.display_name,
                description=command.description,
                state_update=command.state_update,
                request_id=command.request_id,
                actor=command.actor,
            )
        finish = jobs.complete if isinstance(command, CompleteJob) else jobs.fail
        return finish(
            command.job_id,
            etag=command.etag,
            display_name=command.display_name,
            description=command.description,
            state_update=command.state_update,
            request_id=command.request_id,
            actor=command.actor,
        )

    def attempt(self, command: Command, *, via_facade: bool) -> Job | None:
        """Send ``command``, check the outcome the model predicts; the job, or ``None``."""
        expected = self.predict(command)
        head = self.repository.feed_head()
        published = len(self.published)
        try:
            job = self.send(command, via_facade=via_facade)
        except JobledgerError as error:
            self.check_refusal(expected, command, error)
            self.check_nothing_written(head, published, f"refused {command!r}")
            if command.request_id is not None and command.request_id not in self.requests:
                self.refused_request_ids.add(command.request_id)
            return None
        if isinstance(expected, _Refusal):
            _fail(f"{command!r} was carried out; expected {expected.error.__name__}")
        if isinstance(expected, _Answer):
            _require_equal(expected.job, job, f"the answer to the retry {command!r}")
            self.check_nothing_written(head, published, f"the retry {command!r}")
            return job
        _require_equal(head + 1, self.repository.feed_head(), f"feed head after {command!r}")
        _require_equal(published + 1, len(self.published), f"events published by {command!r}")
        if isinstance(command, StartJob):
            self.apply_start(command, job)
        else:
            self.apply_change(command, job)
        if command.request_id is not None:
            self.requests[command.request_id] = _Request(command, via_facade, job)
            self.refused_request_ids.discard(command.request_id)
        return job

    # ------------------------------------------------------------- the model

    def predict(self, command: Command) -> _Prediction:
        """What the ledger must do with ``command``, from the model alone."""
        request_id = command.request_id
        if request_id is not None and request_id in self.requests:
            recorded = self.requests[request_id]
            if _same_command(recorded.command, command):
                return _Answer(recorded.job)
            return _Refusal(RequestIdConflictError, {"request_id": request_id})
        if isinstance(command, StartJob):
            if command.job_id is not None and command.job_id in self.model:
                return _Refusal(JobAlreadyExistsError, {"job_id": command.job_id})
            return _Accept()
        return self.predict_change(command)

    def predict_change(self, command: ChangeCommand) -> _Prediction:
        """What the ledger must do with a change command, retries aside."""
        model = self.model.get(command.job_id)
        if model is None:
            return _Refusal(JobNotFoundError, {"job_id": command.job_id})
        if model.phase.is_terminal:
            kind = _COMMAND_KIND[type(command)].value
            facts = {"job_id": model.id, "phase": model.phase.value, "command": kind}
            return _Refusal(InvalidTransitionError, facts)
        if command.etag not in {ANY_ETAG, model.etag}:
            facts = {"job_id": model.id, "expected_etag": command.etag, "current_etag": model.etag}
            return _Refusal(ConcurrencyError, facts)
        if isinstance(command, UpdateJob) and command.status in _TERMINAL_STATUSES:
            return _Refusal(InvalidJobDataError, {"field": "status"})
        patch = None if isinstance(command, CancelJob) else command.state_update
        if patch is not None and not isinstance(patch, dict):
            return _Refusal(InvalidJobDataError, {"field": "state_update"})
        return _Accept()

    def apply_start(self, command: StartJob, job: Job) -> None:
        """Add the job ``command`` started to the model."""
        _require(job.id not in self.model, f"{command!r} started the existing job {job.id!r}")
        if command.job_id is not None:
            _require_equal(command.job_id, job.id, "the id of the started job")
        model = _ModelJob(
            id=job.id,
            service=command.service,
            entity=command.entity,
            type=command.type,
            input=thaw(command.input),
            display_name=command.display_name,
            description=command.description,
            status=JobStatus.STARTED.value,
            state=thaw(command.state),
            version=1,
            etag=job.etag,
            log=[],
            started_by=command.actor,
            latest=job,
        )
        self.model[job.id] = model
        self.check_job(job, model)

    def apply_change(self, command: ChangeCommand, job: Job) -> None:
        """Apply ``command`` to the model's job."""
        model = self.model[command.job_id]
        if isinstance(command, UpdateJob):
            status = model.status if command.status is None else command.status
        else:
            status = _FINAL_STATUS[type(command)]
        patch = None
        if not isinstance(command, CancelJob) and command.state_update is not None:
            patch = thaw(command.state_update)
            model.state = _reference_merge_patch(model.state, patch)
        if command.display_name is not None:
            model.display_name = command.display_name
        if command.description is not None:
            model.description = command.description
        model.log.append(
            _ModelUpdate(
                update_id=model.version,
                update_type=_UPDATE_TYPE[type(command)],
                status=status,
                state_update=patch,
                display_name=command.display_name,
                description=command.description,
                actor=command.actor,
            )
        )
        model.status = status
        model.version += 1
        _require(job.etag != model.etag, f"{command!r} left the ETag {job.etag!r} as it was")
        if model.latest is not None:
            model.history.append(model.latest)
        model.latest = job
        model.etag = job.etag
        self.check_job(job, model)

    # ---------------------------------------------------------------- checks

    def check_refusal(self, expected: _Prediction, command: Command, error: Exception) -> None:
        """The ledger refused ``command`` with ``error``: was that the expected refusal?"""
        if not isinstance(expected, _Refusal):
            outcome = "the retry's answer" if isinstance(expected, _Answer) else "success"
            _fail(f"{command!r} raised {error!r}; expected {outcome}")
        _require(
            type(error) is expected.error,
            f"{command!r} raised {error!r}; expected {expected.error.__name__}",
        )
        for name, value in expected.facts.items():
            _require_equal(value, getattr(error, name), f"{name} of {error!r}")

    def check_nothing_written(self, head: int, published: int, what: str) -> None:
        """Neither the feed nor the published events grew."""
        _require_equal(head, self.repository.feed_head(), f"the feed head after {what}")
        _require_equal(published, len(self.published), f"events published after {what}")

    def check_job(self, job: Job, model: _ModelJob) -> None:
        """The ledger's job is the model's."""
        facts = (
            ("id", model.id, job.id),
            ("service", model.service, job.service),
            ("entity", model.entity, job.entity),
            ("type", model.type, job.type),
            ("display_name", model.display_name, job.display_name),
            ("description", model.description, job.description),
            ("status", model.status, job.status),
            ("phase", model.phase, job.phase),
            ("version", model.version, job.version),
            ("etag", model.etag, job.etag),
            ("input", _exact(model.input), _exact(job.input)),
            ("state", _exact(model.state), _exact(job.state)),
            ("started_by", model.started_by, job.started_by),
        )
        for name, expected, actual in facts:
            _require_equal(expected, actual, f"{name} of job {model.id!r}")

    def check_log_matches_model(self, log: Sequence[JobUpdate], model: _ModelJob) -> None:
        """The job's update log is the model's."""
        actual = [
            _ModelUpdate(
                update_id=update.update_id,
                update_type=update.update_type,
                status=update.status,
                state_update=None if update.state_update is None else thaw(update.state_update),
                display_name=update.display_name,
                description=update.description,
                actor=update.actor,
            )
            for update in log
        ]
        _require_equal(
            [_exact(attrs.astuple(update)) for update in model.log],
            [_exact(attrs.astuple(update)) for update in actual],
            f"the update log of job {model.id!r}",
        )

    def check_update_ids(self, job_id: str, log: Sequence[JobUpdate]) -> None:
        """Update ids are 1..n with no gap, and ``updates(after=k)`` is the log after k."""
        _require_equal(
            list(range(1, len(log) + 1)),
            [update.update_id for update in log],
            f"update ids of job {job_id!r}",
        )
        for update in log:
            _require_equal(job_id, update.job_id, f"job id of update {update.update_id}")
        half = len(log) // 2
        after = tuple(self.repository.updates(job_id, after=half))
        _require_equal(log[half:], after, f"updates of job {job_id!r} after {half}")

    def check_log_only_grows(self, job_id: str, log: tuple[JobUpdate, ...]) -> None:
        """The log seen last time is a prefix of the log now."""
        before = self.seen_logs.get(job_id, ())
        _require_equal(before, log[: len(before)], f"the earlier log of job {job_id!r}")
        self.seen_logs[job_id] = log

    def check_etags(self, job: Job, log: Sequence[JobUpdate], started: JobStarted) -> None:
        """Each version has its own ETag; it changes exactly when the version does."""
        chain = [started.etag, *(update.etag for update in log)]
        _require_equal(len(chain), len(set(chain)), f"distinct ETags of job {job.id!r}: {chain}")
        _require_equal(chain[-1], job.etag, f"the ETag of job {job.id!r} after its last change")
        seen = self.seen_etags.setdefault(job.id, set())
        previous = self.seen_versions.get(job.id)
        if previous is not None:
            version, etag = previous
            if job.version == version:
                _require_equal(etag, job.etag, f"the ETag of job {job.id!r} at version {version}")
            else:
                _require(job.version > version, f"job {job.id!r} went back to {job.version}")
                _require(job.etag not in seen, f"job {job.id!r} reused the ETag {job.etag!r}")
        seen.update(chain)
        self.seen_versions[job.id] = (job.version, job.etag)

    def check_replay(self, job: Job, log: Sequence[JobUpdate], started: JobStarted) -> None:
        """Replaying the log over the started event's state gives the job as it is."""
        state = thaw(started.state)
        display_name, description, status = started.display_name, started.description, "started"
        for update in log:
            if update.state_update is not None:
                state = _reference_merge_patch(state, thaw(update.state_update))
            display_name = display_name if update.display_name is None else update.display_name
            description = description if update.description is None else update.description
            status = update.status
        replayed = (_exact(state), display_name, description, status, len(log) + 1)
        actual = (_exact(job.state), job.display_name, job.description, job.status, job.version)
        _require_equal(replayed, actual, f"job {job.id!r} replayed from its log")
        _require_equal(_exact(started.input), _exact(job.input), f"input of job {job.id!r}")
        _require_equal(started.at, job.created_at, f"created_at of job {job.id!r}")
        _require_equal(started.actor, job.started_by, f"started_by of job {job.id!r}")
        last_change = log[-1].at if log else started.at
        _require_equal(last_change, job.updated_at, f"updated_at of job {job.id!r}")

    def events_of(self, job_id: str) -> tuple[JobStarted, list[JobEvent]]:
        """The job's published events: its one JobStarted, then the others in order."""
        events = [event for event in self.published if event.job_id == job_id]
        _require(
            bool(events) and isinstance(events[0], JobStarted),
            f"job {job_id!r}'s first published event is not JobStarted: {events[:1]!r}",
        )
        started, changes = events[0], events[1:]
        assert isinstance(started, JobStarted)
        return started, changes

    def check_events(self, job: Job, log: Sequence[JobUpdate], changes: list[JobEvent]) -> None:
        """One change event per update, in order, saying what the update says."""
        _require_equal(len(log), len(changes), f"change events published for job {job.id!r}")
        for update, event in zip(log, changes, strict=True):
            _require_equal(
                _EVENT_TYPE[update.update_type].__name__,
                type(event).__name__,
                f"the event of update {update.update_id} of job {job.id!r}",
            )
            assert not isinstance(event, JobStarted)
            state_update = None if isinstance(event, JobCanceled) else event.state_update
            said = (
                update.update_id,
                update.update_id + 1,
                update.etag,
                update.status,
                _exact(update.state_update),
                update.display_name,
                update.description,
                update.at,
                update.actor,
                (job.service, job.entity, job.type),
            )
            told = (
                event.update_id,
                event.version,
                event.etag,
                event.status,
                _exact(state_update),
                event.display_name,
                event.description,
                event.at,
                event.actor,
                (event.service, event.entity, event.type),
            )
            _require_equal(said, told, f"the event of update {update.update_id} of {job.id!r}")

    def check_feed(self) -> None:
        """The feed is gap-free from 1, and holds exactly the published events, in order."""
        entries: list[FeedEntry] = []
        while page := self.repository.read_feed(after=len(entries), limit=100):
            entries.extend(page)
            _require_equal(
                list(range(1, len(entries) + 1)),
                [entry.position for entry in entries],
                "feed positions",
            )
        _require_equal(len(entries), self.repository.feed_head(), "the feed head")
        _require_equal(self.published, [entry.event for entry in entries], "the feed's events")
        event_ids = [entry.event.event_id for entry in entries]
        _require_equal(len(event_ids), len(set(event_ids)), "distinct event ids in the feed")

    def check_request_records(self) -> None:
        """Each successful request id answers with its job; a refused one is unrecorded."""
        for request_id, request in self.requests.items():
            record = self.repository.find_request(request_id)
            _require(record is not None, f"request {request_id!r} was not recorded")
            assert record is not None
            _require_equal(request.job, record.job, f"the job recorded for {request_id!r}")
        for request_id in self.refused_request_ids:
            record = self.repository.find_request(request_id)
            _require_equal(None, record, f"the record of the refused request {request_id!r}")


def ledger_machine(
    make_repository: Callable[[], R],
    *,
    settings: hypothesis.settings | None = None,
    dispose: Callable[[R], object] | None = None,
) -> type[RuleBasedStateMachine]:
    """Build a state machine that proves the ledger's rules over your repository.

    Each run of the machine calls ``make_repository`` once and drives a
    :class:`~jobledger.Jobs` over it, with a deterministic clock and id factory
    and a subscriber that records every published event. Use the returned
    class's ``TestCase`` as a test (pytest and unittest both collect it).

    Args:
        make_repository: Returns a fresh, empty repository each time it is
            called. The machine's ids (job ids, ETags, event ids) repeat from
            run to run, so runs must not share stored jobs.
        settings: Hypothesis settings for the machine. By default 50 examples
            of up to 30 steps each, with no deadline (storage is noisy), over the
            settings of the active hypothesis profile.
        dispose: Called with each run's repository when the run ends, to close
            connections or remove files (``SQLiteRepository.close``, say).

    Returns:
        A :class:`~hypothesis.stateful.RuleBasedStateMachine` subclass.

    >>> from jobledger import InMemoryRepository
    >>> from hypothesis import settings
    >>> machine = ledger_machine(InMemoryRepository, settings=settings(max_examples=5))
    >>> machine.TestCase.settings.max_examples
    5
    """

    class LedgerMachine(_LedgerMachine):
        """The ledger's rules over one kind of repository."""

        def new_repository(self) -> Repository:
            return make_repository()

        def dispose_repository(self, repository: Repository) -> None:
            if dispose is not None:
                # It is the repository new_repository made, so an R.
                dispose(cast("R", repository))

    chosen = settings
    if chosen is None:
        chosen = hypothesis.settings(max_examples=50, stateful_step_count=30, deadline=None)
    return chosen(LedgerMachine)
