"""Thread races that prove a repository keeps the ledger's rules under real concurrency.

Each function here starts threads together (a :class:`threading.Barrier`), each
with its own :class:`~jobledger.Jobs` over one shared repository, as separate
processes would have. It then checks the ledger's rules and raises
:class:`AssertionError` naming the first one broken. A race that saw no
contention proved nothing, so that is an error too. What the race came to
(attempts, acknowledgements, conflicts) is returned for the caller to report
or check further.

* :func:`race_updates`: ETag-guarded updates of a few jobs. Exactly one writer
  wins per ETag; no acknowledged update is lost or applied twice; no refused
  one leaves a trace.
* :func:`race_starts`: starts of the same job id. Exactly one succeeds; the
  others get :class:`~jobledger.JobAlreadyExistsError`.
* :func:`race_request_twins`: the same command with the same request id from
  every thread. All get the same job back; it is written once.
* :func:`race_wildcard_updates`: updates with :data:`~jobledger.ANY_ETAG`. All
  succeed, and none is lost.
* :func:`race_batches`: batches of commands (:meth:`~jobledger.Jobs.handle_all`)
  that change one job with the same ETag. Exactly one batch wins each round;
  nothing of the others is saved.

A storage adapter proves itself with one call per race::

    def test_updates_race(tmp_path):
        race_updates(lambda: MyRepository(tmp_path / "jobs.db"))

>>> from jobledger import InMemoryRepository
>>> race = race_starts(InMemoryRepository, rounds=2)
>>> race.started, race.refused
(2, 14)
"""

from __future__ import annotations

import contextlib
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Literal, NoReturn, TypeVar

import attrs

from jobledger import (
    ANY_ETAG,
    ConcurrencyError,
    Job,
    JobAlreadyExistsError,
    JobledgerError,
    JobNotFoundError,
    Jobs,
    JobStarted,
    Repository,
    StartJob,
    UpdateJob,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from jobledger import (
        Change,
        Command,
        FeedEntry,
        JobPage,
        JobQuery,
        JobUpdate,
        RequestRecord,
    )

__all__ = [
    "BatchRace",
    "StartRace",
    "TwinKind",
    "TwinRace",
    "UpdateRace",
    "WildcardRace",
    "race_batches",
    "race_request_twins",
    "race_starts",
    "race_updates",
    "race_wildcard_updates",
]

T = TypeVar("T")

#: How long a thread waits for the others at a barrier before the race is
#: declared broken (a thread died, or the repository deadlocked).
BARRIER_TIMEOUT = 60.0

#: The thread switch interval during a race: far below CPython's 5 ms default,
#: so that threads interleave between reading a job and saving its change.
SWITCH_INTERVAL = 1e-5

_SERVICE, _ENTITY = "race", "job"

#: How often a thread that holds old reads sends one instead of reading again.
_OLD_READ_SHARE = 0.5


@attrs.frozen
class UpdateRace:
    """What :func:`race_updates` came to.

    Attributes:
        attempts: Updates sent, in all threads.
        acknowledged: Updates that succeeded.
        conflicts: Updates refused with :class:`~jobledger.ConcurrencyError`.
        interleaved_conflicts: Those of the conflicts whose ETag had been read
            just before: another thread wrote between the read and the update.
    """

    attempts: int
    acknowledged: int
    conflicts: int
    interleaved_conflicts: int


@attrs.frozen
class StartRace:
    """What :func:`race_starts` came to.

    Attributes:
        rounds: How many job ids were raced for.
        started: Starts that succeeded: one per round.
        refused: Starts refused with :class:`~jobledger.JobAlreadyExistsError`.
    """

    rounds: int
    started: int
    refused: int


@attrs.frozen
class TwinRace:
    """What :func:`race_request_twins` came to.

    Attributes:
        rounds: How many request ids were raced with.
        answered: Commands that returned the job, in all threads and rounds.
        missed_records: Twins whose first look-up of the request id found no
            record, so that they went on to decide and save: the contention.
        refused_saves: Saves the repository refused because a twin had saved
            first (other twins are refused at their decision already).
    """

    rounds: int
    answered: int
    missed_records: int
    refused_saves: int


@attrs.frozen
class WildcardRace:
    """What :func:`race_wildcard_updates` came to.

    Attributes:
        acknowledged: Wildcard updates that succeeded (all of them).
        refused_saves: Saves the repository refused with
            :class:`~jobledger.ConcurrencyError` and the ledger retried.
    """

    acknowledged: int
    refused_saves: int


@attrs.frozen
class BatchRace:
    """What :func:`race_batches` came to.

    Attributes:
        rounds: How many rounds the batches raced.
        won: Batches that were saved: one per round.
        refused: Batches refused with :class:`~jobledger.ConcurrencyError`.
    """

    rounds: int
    won: int
    refused: int


def _fail(message: str) -> NoReturn:
    # An explicit raise, not `assert`: this module is library code, which pytest
    # does not rewrite and `python -O` would strip.
    raise AssertionError(message)


def _require_equal(expected: object, actual: object, what: str) -> None:
    if expected != actual:
        _fail(f"{what}: expected {expected!r}, got {actual!r}")


@contextlib.contextmanager
def _frequent_switches() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _in_threads(count: int, work: Callable[[int], T]) -> list[T]:
    """Run ``work(0)``, ..., ``work(count - 1)`` in threads; their results, or the first error."""
    with _frequent_switches(), ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(work, index) for index in range(count)]
        return [future.result() for future in futures]


class _WatchedRepository:
    """Passes every call through, counting refused saves; can hold reads at a gate.

    ``hold`` names what each thread's first call of a kind waits for at ``gate``
    until every thread has made its own: its first read of a job (then all
    threads start from the same versions, and all but one per job must lose),
    or its first look-up of each request id (then all twins miss the record and
    race to save, instead of most of them finding it). Either makes the race
    certain instead of likely. With a ``read_latency``, every read of a job
    takes that many seconds more, as a round trip to a server would.
    """

    def __init__(
        self,
        repository: Repository,
        *,
        gate: threading.Barrier | None = None,
        hold: Literal["first read", "first look-up"] | None = None,
        read_latency: float = 0.0,
    ) -> None:
        self._repository = repository
        self._gate = gate
        self._hold = hold
        self._read_latency = read_latency
        self._lock = threading.Lock()
        self._seen: set[tuple[int, str]] = set()
        self.refused_saves: Counter[type[JobledgerError]] = Counter()
        #: First look-ups of a request id, per thread, that found no record.
        self.missed_records: Counter[str] = Counter()

    def _first(self, what: str) -> bool:
        """Whether this is the calling thread's first call for ``what``."""
        key = (threading.get_ident(), what)
        with self._lock:
            first = key not in self._seen
            self._seen.add(key)
        return first

    def _wait_at_gate(self) -> None:
        if self._gate is not None:
            self._gate.wait(BARRIER_TIMEOUT)

    def get(self, job_id: str) -> Job:
        job = self._repository.get(job_id)
        if self._read_latency:
            time.sleep(self._read_latency)
        if self._hold == "first read" and self._first("a read"):
            self._wait_at_gate()
        return job

    def updates(self, job_id: str, *, after: int = 0) -> Sequence[JobUpdate]:
        return self._repository.updates(job_id, after=after)

    def find(self, query: JobQuery) -> JobPage:
        return self._repository.find(query)

    def find_request(self, request_id: str) -> RequestRecord | None:
        record = self._repository.find_request(request_id)
        if self._hold == "first look-up" and self._first(request_id):
            if record is None:
                with self._lock:
                    self.missed_records[request_id] += 1
            self._wait_at_gate()
        return record

    def save(self, change: Change) -> int:
        try:
            return self._repository.save(change)
        except JobledgerError as error:
            with self._lock:
                self.refused_saves[type(error)] += 1
            raise

    def read_feed(self, *, after: int = 0, limit: int = 1000) -> Sequence[FeedEntry]:
        return self._repository.read_feed(after=after, limit=limit)

    def feed_head(self) -> int:
        return self._repository.feed_head()

    def load_checkpoint(self, name: str) -> int:
        return self._repository.load_checkpoint(name)

    def save_checkpoint(self, name: str, position: int) -> None:
        self._repository.save_checkpoint(name, position)


def _whole_feed(repository: Repository) -> list[FeedEntry]:
    """Every feed entry, checked to be gap-free from position 1."""
    entries: list[FeedEntry] = []
    while page := repository.read_feed(after=len(entries), limit=1000):
        entries.extend(page)
    _require_equal(
        list(range(1, len(entries) + 1)), [entry.position for entry in entries], "feed positions"
    )
    _require_equal(len(entries), repository.feed_head(), "the feed head")
    return entries


def _check_feed_follows_logs(repository: Repository, job_ids: Sequence[str]) -> None:
    """Each job's events in the feed: its start, then one per update, in update order."""
    entries = _whole_feed(repository)
    for job_id in job_ids:
        events = [entry.event for entry in entries if entry.event.job_id == job_id]
        log = repository.updates(job_id)
        _require_equal(
            ["JobStarted", *(["JobUpdated"] * len(log))],
            [type(event).__name__ for event in events],
            f"the kinds of the feed's events for job {job_id!r}",
        )
        _require_equal(
            [update.etag for update in log],
            [event.etag for event in events[1:]],
            f"the ETags of the feed's change events for job {job_id!r}",
        )


def _check_log(job: Job, log: Sequence[JobUpdate]) -> None:
    """Update ids are 1..n; the job is at version n + 1 with the last update's ETag."""
    _require_equal(
        list(range(1, len(log) + 1)),
        [update.update_id for update in log],
        f"update ids of job {job.id!r}",
    )
    _require_equal(len(log) + 1, job.version, f"the version of job {job.id!r}")
    if log:
        _require_equal(log[-1].etag, job.etag, f"the ETag of job {job.id!r}")


def _check_markers(job: Job, log: Sequence[JobUpdate], acknowledged: dict[str, str]) -> None:
    """Each acknowledged update (marker: thread) is in the log once, and no other is."""
    markers = Counter(
        str(update.state_update["marker"]) for update in log if update.state_update is not None
    )
    doubled = sorted(marker for marker, count in markers.items() if count > 1)
    _require_equal([], doubled, f"updates applied twice to job {job.id!r}")
    _require_equal(
        sorted(acknowledged),
        sorted(markers),
        f"the acknowledged updates in the log of job {job.id!r}",
    )
    per_thread = Counter(acknowledged.values())
    _require_equal(
        {thread: per_thread[thread] for thread in sorted(per_thread)},
        job.state.get("acks", {}),
        f"the per-thread counters in the state of job {job.id!r}",
    )


def _start_jobs(repository: Repository, count: int, prefix: str) -> list[Job]:
    ledger = Jobs(repository)
    return [
        ledger.start(service=_SERVICE, entity=_ENTITY, type=prefix, job_id=f"{prefix}-{n}")
        for n in range(count)
    ]


@attrs.frozen
class _Win:
    job_id: str
    etag_used: str
    etag_after: str
    update_id: int
    marker: str


@attrs.define
class _UpdateRacer:
    """One thread of :func:`race_updates`."""

    index: int
    repository: Repository
    job_ids: Sequence[str]
    attempts: int
    barrier: threading.Barrier
    wins: list[_Win] = attrs.Factory(list)
    refused_markers: list[str] = attrs.Factory(list)
    conflicts: int = 0
    interleaved_conflicts: int = 0

    def __call__(self) -> _UpdateRacer:
        ledger = Jobs(self.repository)
        chooser = random.Random(self.index)  # noqa: S311  (a reproducible pick, not a secret)
        # Odd threads hold on to an ETag they read a while ago and send it again.
        holds_old_reads = self.index % 2 == 1
        held: dict[str, str] = {}
        acks: Counter[str] = Counter()
        thread = str(self.index)
        self.barrier.wait(BARRIER_TIMEOUT)
        for attempt in range(self.attempts):
            job_id = chooser.choice(self.job_ids)
            reuse = holds_old_reads and chooser.random() < _OLD_READ_SHARE
            etag = held.get(job_id) if reuse else None
            just_read = etag is None
            if etag is None:
                etag = ledger.get(job_id).etag
                held[job_id] = etag
            marker = f"{thread}-{attempt}"
            patch = {"acks": {thread: acks[job_id] + 1}, "marker": marker}
            try:
                job = ledger.update(job_id, etag=etag, state_update=patch)
            except ConcurrencyError as error:
                if error.expected_etag != etag or error.current_etag == etag:
                    _fail(f"{error!r} does not describe the conflict of ETag {etag!r}")
                self.conflicts += 1
                if just_read:
                    self.interleaved_conflicts += 1
                self.refused_markers.append(marker)
                held.pop(job_id, None)
                continue
            acks[job_id] += 1
            self.wins.append(_Win(job_id, etag, job.etag, job.version - 1, marker))
        return self


def race_updates(
    make_repository: Callable[[], Repository],
    *,
    threads: int = 8,
    jobs: int = 3,
    attempts_per_thread: int = 300,
) -> UpdateRace:
    """Race ETag-guarded updates of a few jobs from many threads; check no rule broke.

    Each thread loops: read a job, update it with the ETag it read, and on
    :class:`~jobledger.ConcurrencyError` count a conflict and read again. Half
    the threads also resend an ETag they read a while ago. Every update carries
    a unique marker and sets its thread's counter of acknowledged updates. Each
    thread's first read waits until every thread has made its own, so threads
    that picked the same job start from the same ETag: the race is certain.

    Checks: exactly one update succeeded per ETag, and it was sent with the
    ETag of the update before it; every acknowledged update is in the log
    exactly once, and no refused one; the state's counters equal the
    acknowledgements; update ids are 1..n; the feed follows the logs; some
    thread's update conflicted with a write made after its read.

    Args:
        make_repository: Returns the repository to race on; called once.
        threads: How many threads race.
        jobs: How many jobs they race on.
        attempts_per_thread: How many updates each thread sends.

    Returns:
        The attempts, acknowledgements and conflicts.

    Raises:
        AssertionError: a rule broke, or no thread wrote between another
            thread's read and update.
    """
    repository = make_repository()
    started = {job.id: job for job in _start_jobs(repository, jobs, "updates")}
    job_ids = sorted(started)
    barrier = threading.Barrier(threads)
    watched = _WatchedRepository(repository, gate=barrier, hold="first read")
    racers = _in_threads(
        threads,
        lambda index: _UpdateRacer(index, watched, job_ids, attempts_per_thread, barrier)(),
    )
    wins = [win for racer in racers for win in racer.wins]
    used = Counter(win.etag_used for win in wins)
    twice = sorted(etag for etag, count in used.items() if count > 1)
    _require_equal([], twice, "ETags that more than one update succeeded with")
    refused = {marker for racer in racers for marker in racer.refused_markers}
    for job_id in job_ids:
        job = repository.get(job_id)
        log = repository.updates(job_id)
        _check_log(job, log)
        chain = [started[job_id].etag, *(update.etag for update in log)]
        mine = sorted((win for win in wins if win.job_id == job_id), key=lambda win: win.update_id)
        _require_equal(
            list(range(1, len(log) + 1)),
            [win.update_id for win in mine],
            f"the update ids acknowledged for job {job_id!r}",
        )
        for win in mine:
            what = f"update {win.update_id} of job {job_id!r}"
            _require_equal(chain[win.update_id - 1], win.etag_used, f"the ETag sent by {what}")
            _require_equal(chain[win.update_id], win.etag_after, f"the ETag after {what}")
        _check_markers(job, log, {win.marker: win.marker.split("-")[0] for win in mine})
        leaked = sorted(
            refused.intersection(
                str(update.state_update["marker"])
                for update in log
                if update.state_update is not None
            )
        )
        _require_equal([], leaked, f"refused updates found in the log of job {job_id!r}")
    _check_feed_follows_logs(repository, job_ids)
    conflicts = sum(racer.conflicts for racer in racers)
    interleaved = sum(racer.interleaved_conflicts for racer in racers)
    if interleaved == 0:
        _fail(
            "no thread wrote between another's read and update: the threads never raced, "
            "so the race proved nothing; raise attempts_per_thread"
        )
    return UpdateRace(threads * attempts_per_thread, len(wins), conflicts, interleaved)


def race_starts(
    make_repository: Callable[[], Repository], *, threads: int = 8, rounds: int = 20
) -> StartRace:
    """Race starts of the same job id from many threads, for several ids; check one wins.

    Checks, for every id: exactly one start succeeded and the others raised
    :class:`~jobledger.JobAlreadyExistsError` naming it; the stored job is the
    winner's; the feed holds one ``JobStarted`` for it; its log is empty.

    Args:
        make_repository: Returns the repository to race on; called once.
        threads: How many threads race for each id.
        rounds: How many ids they race for, one after the other.

    Returns:
        How many starts succeeded and how many were refused.

    Raises:
        AssertionError: a rule broke.
    """
    repository = make_repository()
    barrier = threading.Barrier(threads)
    job_ids = [f"raced-start-{n}" for n in range(rounds)]

    def racer(index: int) -> list[Job | None]:
        ledger = Jobs(repository)
        outcomes: list[Job | None] = []
        for job_id in job_ids:
            barrier.wait(BARRIER_TIMEOUT)
            try:
                job = ledger.start(
                    service=_SERVICE,
                    entity=_ENTITY,
                    type="start",
                    job_id=job_id,
                    input={"thread": index},
                )
            except JobAlreadyExistsError as error:
                _require_equal(job_id, error.job_id, f"the job id in {error!r}")
                outcomes.append(None)
            else:
                outcomes.append(job)
        return outcomes

    outcomes = _in_threads(threads, racer)
    for round_number, job_id in enumerate(job_ids):
        winners = [job for by_thread in outcomes if (job := by_thread[round_number]) is not None]
        _require_equal(1, len(winners), f"starts of job {job_id!r} that succeeded")
        _require_equal(winners[0], repository.get(job_id), f"the stored job {job_id!r}")
        _require_equal((), tuple(repository.updates(job_id)), f"the log of job {job_id!r}")
    starts = Counter(
        entry.event.job_id
        for entry in _whole_feed(repository)
        if isinstance(entry.event, JobStarted)
    )
    _require_equal(dict.fromkeys(job_ids, 1), dict(starts), "JobStarted events per job id")
    return StartRace(rounds, rounds, rounds * (threads - 1))


#: The commands :func:`race_request_twins` can race with.
TwinKind = Literal["start", "start with job id", "update"]


def race_request_twins(
    make_repository: Callable[[], Repository],
    *,
    kind: TwinKind = "start",
    threads: int = 8,
    rounds: int = 5,
) -> TwinRace:
    """Send one command with one request id from many threads at once; check it is done once.

    Every thread looks the request id up before any of them saves (the
    repository is wrapped to hold each look-up until all threads have made
    theirs), so every thread misses the record and goes on to decide and save;
    all but one are then refused, at their decision or at the save, and must be
    answered as a retry.

    Checks, for every round: every thread got the same job back; the command
    was written once (one event in the feed; for an update, one update in the
    log); the request record answers with that job; at least two twins missed
    the record (they raced).

    Args:
        make_repository: Returns the repository to race on; called once.
        kind: The command raced with: a start with no job id, a start with
            its own job id, or an update of an existing job with its ETag.
        threads: How many threads send the command.
        rounds: How many times to race, each with a new request id.

    Returns:
        The rounds, the answers, the missed records and the refused saves.

    Raises:
        AssertionError: a rule broke, a twin got an error, or the twins of a
            round did not race.
    """
    repository = make_repository()
    barrier = threading.Barrier(threads)
    watched = _WatchedRepository(repository, gate=barrier, hold="first look-up")
    answered = 0
    for round_number in range(rounds):
        request_id = f"twin-{kind}-{round_number}"
        command: Command
        if kind == "update":
            job = _start_jobs(repository, 1, f"twins-{round_number}")[0]
            command = UpdateJob(
                job_id=job.id,
                etag=job.etag,
                state_update={"round": round_number},
                request_id=request_id,
            )
        else:
            job_id = f"twin-job-{round_number}" if kind == "start with job id" else None
            command = StartJob(
                service=_SERVICE,
                entity=_ENTITY,
                type="twins",
                job_id=job_id,
                request_id=request_id,
            )
        head = repository.feed_head()

        def twin(_index: int, command: Command = command) -> Job:
            barrier.wait(BARRIER_TIMEOUT)
            try:
                return Jobs(watched).handle(command)
            except JobledgerError as error:
                _fail(f"a twin of {command!r} got {error!r}; a retry must get the job back")

        jobs = _in_threads(threads, twin)
        _require_equal([jobs[0]] * threads, jobs, f"the jobs the twins of {request_id!r} got")
        _require_equal(head + 1, repository.feed_head(), f"events written for {request_id!r}")
        record = repository.find_request(request_id)
        _require_equal(jobs[0], None if record is None else record.job, f"record {request_id!r}")
        if kind == "update":
            _require_equal(1, len(repository.updates(jobs[0].id)), "updates written")
        answered += len(jobs)
        if watched.missed_records[request_id] <= 1:
            _fail(f"fewer than two twins of {request_id!r} missed its record: they never raced")
    return TwinRace(rounds, answered, watched.missed_records.total(), watched.refused_saves.total())


def race_wildcard_updates(
    make_repository: Callable[[], Repository],
    *,
    threads: int = 8,
    updates_per_thread: int = 50,
    read_latency: float = 0.0,
) -> WildcardRace:
    """Race updates with :data:`~jobledger.ANY_ETAG` on one job; check all succeed, none lost.

    Each thread's first read waits until every thread has made its own, so
    all start from the same version and all but one must retry.

    Checks: every update succeeded; each is in the log exactly once; the
    state's counters equal the acknowledgements; update ids are 1..n; the feed
    follows the log; the repository refused saves that the ledger retried
    (the contention).

    Args:
        make_repository: Returns the repository to race on; called once.
        threads: How many threads race.
        updates_per_thread: How many wildcard updates each thread sends.
        read_latency: Seconds added to every read of a job, as a round trip
            to a database server would: the longer the read, the more often
            another thread saves between a read and its save.

    Returns:
        The acknowledgements and the refused saves.

    Raises:
        AssertionError: a rule broke, an update failed, or no save was refused.
    """
    repository = make_repository()
    job_id = _start_jobs(repository, 1, "wildcard")[0].id
    barrier = threading.Barrier(threads)
    watched = _WatchedRepository(
        repository, gate=barrier, hold="first read", read_latency=read_latency
    )

    def racer(index: int) -> list[str]:
        ledger = Jobs(watched)
        thread = str(index)
        markers = []
        barrier.wait(BARRIER_TIMEOUT)
        for number in range(1, updates_per_thread + 1):
            marker = f"{thread}-{number}"
            patch = {"acks": {thread: number}, "marker": marker}
            try:
                ledger.update(job_id, etag=ANY_ETAG, state_update=patch)
            except JobledgerError as error:
                _fail(f"the wildcard update {marker} failed: {error!r}")
            markers.append(marker)
        return markers

    markers = [marker for by_thread in _in_threads(threads, racer) for marker in by_thread]
    job = repository.get(job_id)
    log = repository.updates(job_id)
    _check_log(job, log)
    _check_markers(job, log, {marker: marker.split("-")[0] for marker in markers})
    _check_feed_follows_logs(repository, [job_id])
    refused = watched.refused_saves[ConcurrencyError]
    if refused == 0:
        _fail("no save was refused: the wildcard updates never raced, so the race proved nothing")
    return WildcardRace(len(markers), refused)


def race_batches(
    make_repository: Callable[[], Repository], *, threads: int = 8, rounds: int = 10
) -> BatchRace:
    """Race batches that change one job with the same ETag, from many threads; check one wins.

    Each round, every thread reads the shared job, waits for the others, then
    sends one batch (:meth:`~jobledger.Jobs.handle_all`): the start of a job of
    its own, then two updates of the shared job, both carrying the ETag it read
    (the second one chains on the first). Checks, for every round: exactly one
    batch was saved and the others raised :class:`~jobledger.ConcurrencyError`
    with the winner's ETag; the losers' jobs do not exist; the shared job's log
    holds the winners' updates, two a round, in order; the feed is gap-free and
    holds exactly the winners' events.

    Args:
        make_repository: Returns the repository to race on; called once.
        threads: How many threads race each round.
        rounds: How many rounds they race.

    Returns:
        How many batches were saved and how many were refused.

    Raises:
        AssertionError: a rule broke.
    """
    repository = make_repository()
    shared = _start_jobs(repository, 1, "batched")[0]
    barrier = threading.Barrier(threads)

    def racer(index: int) -> list[str | None]:
        ledger = Jobs(repository)
        outcomes: list[str | None] = []
        for round_number in range(rounds):
            etag = ledger.get(shared.id).etag
            marker = f"{round_number}-{index}"
            barrier.wait(BARRIER_TIMEOUT)
            try:
                ledger.handle_all(
                    [
                        StartJob(service=_SERVICE, entity=_ENTITY, type="side", job_id=marker),
                        UpdateJob(job_id=shared.id, etag=etag, state_update={"marker": marker}),
                        UpdateJob(job_id=shared.id, etag=etag, status=f"after-{marker}"),
                    ]
                )
            except ConcurrencyError as error:
                if (error.job_id, error.expected_etag) != (shared.id, etag):
                    _fail(f"{error!r} does not describe the conflict of ETag {etag!r}")
                outcomes.append(None)
            else:
                outcomes.append(marker)
            barrier.wait(BARRIER_TIMEOUT)
        return outcomes

    outcomes = _in_threads(threads, racer)
    winners: list[str] = []
    for round_number in range(rounds):
        won = [marker for by_thread in outcomes if (marker := by_thread[round_number]) is not None]
        _require_equal(1, len(won), f"batches saved in round {round_number}")
        winners.extend(won)
    _check_batch_winners(
        repository,
        shared.id,
        winners,
        [f"{round_number}-{index}" for round_number in range(rounds) for index in range(threads)],
    )
    return BatchRace(rounds, rounds, rounds * (threads - 1))


def _check_batch_winners(
    repository: Repository, shared_id: str, winners: Sequence[str], markers: Sequence[str]
) -> None:
    """Only the winning batches of :func:`race_batches` left a trace, each all of it, in order."""
    existing = []
    for marker in markers:
        with contextlib.suppress(JobNotFoundError):
            existing.append(repository.get(marker).id)
    _require_equal(sorted(winners), sorted(existing), "the batches' own jobs that exist")
    log = repository.updates(shared_id)
    _check_log(repository.get(shared_id), log)
    _require_equal(
        list(winners),
        [None if update.state_update is None else update.state_update["marker"] for update in log][
            ::2
        ],
        "the first update of each winning batch, in order",
    )
    _require_equal(
        [f"after-{marker}" for marker in winners],
        [update.status for update in log][1::2],
        "the second update of each winning batch, in order",
    )
    entries = _whole_feed(repository)
    _require_equal(
        sorted([shared_id, *winners]),
        sorted(entry.event.job_id for entry in entries if isinstance(entry.event, JobStarted)),
        "the jobs started (no loser's)",
    )
    _require_equal(1 + 3 * len(winners), len(entries), "feed entries: the winners' events only")
