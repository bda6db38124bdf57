"""Two services that cooperate on one job through the ledger and its events.

:class:`EmployeeExport` (the HR service) starts a run, reports its progress batch
by batch and leaves the job ``awaiting-import``. :class:`AccountProvisioner` (the
IT service) subscribes to those jobs and completes each one once it has created
the accounts, or fails it when an employee cannot get one.
:func:`fail_stalled_runs` fails the runs that stopped making progress.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobledger import ConcurrencyError, JobPhase, JobUpdated

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime, timedelta

    from jobledger import Job, JobEvent, Jobs, Subscription

SERVICE = "hr"
ENTITY = "employee"
TYPE = "account-sync"
AWAITING_IMPORT = "awaiting-import"


class EmployeeExport:
    """The HR service: exports employees in batches and hands the run to IT.

    Args:
        jobs: The ledger shared with the IT service.
        batch_size: How many employees one progress update reports.
    """

    def __init__(self, jobs: Jobs, *, batch_size: int = 2) -> None:
        """Keep the ledger and the batch size."""
        self._jobs = jobs
        self._batch_size = batch_size

    def run(self, employees: Sequence[str]) -> Job:
        """Export ``employees``; return the run's job, left ``awaiting-import``."""
        job = self._jobs.start(
            service=SERVICE,
            entity=ENTITY,
            type=TYPE,
            display_name="Employee export",
            input={"employees": list(employees)},
            state={"exported": 0, "total": len(employees)},
        )
        for done in range(self._batch_size, len(employees) + self._batch_size, self._batch_size):
            exported = min(done, len(employees))
            job = self._jobs.update(
                job.id, etag=job.etag, status="exporting", state_update={"exported": exported}
            )
        return self._jobs.update(job.id, etag=job.etag, status=AWAITING_IMPORT)


class AccountProvisioner:
    """The IT service: creates an account per exported employee and completes the run.

    Args:
        jobs: The ledger shared with the HR service.
        create_account: Makes the account of one employee and returns its login;
            raises ``ValueError`` for an employee who cannot have one.
    """

    def __init__(self, jobs: Jobs, create_account: Callable[[str], str]) -> None:
        """Keep the ledger and the account maker."""
        self._jobs = jobs
        self._create_account = create_account

    def listen(self) -> Subscription:
        """Subscribe to the HR runs' updates; cancel the subscription to stop."""
        return self._jobs.subscribe(self.on_event, service=SERVICE, type=TYPE, events=JobUpdated)

    def on_event(self, event: JobEvent) -> None:
        """Provision the accounts of a run that awaits its import, then complete or fail it."""
        if event.status != AWAITING_IMPORT:
            return
        job = self._jobs.get(event.job_id)
        employees = job.input.get("employees") if isinstance(job.input, dict) else None
        names = [str(name) for name in employees] if isinstance(employees, list) else []
        try:
            logins = [self._create_account(name) for name in names]
        except ValueError as err:
            self._jobs.fail(job.id, etag=event.etag, state_update={"error": str(err)})
            return
        try:
            self._jobs.complete(job.id, etag=event.etag, state_update={"accounts": logins})
        except ConcurrencyError:
            # Someone changed the run since this event (an operator cancelled it):
            # their decision stands.
            return


def fail_stalled_runs(jobs: Jobs, *, now: datetime, max_idle: timedelta) -> list[Job]:
    """Fail every active HR run with no change for longer than ``max_idle``; return them."""
    stalled: list[Job] = []
    cursor = None
    while True:
        page = jobs.find(service=SERVICE, type=TYPE, phase=JobPhase.ACTIVE, cursor=cursor)
        stalled += [job for job in page.jobs if now - job.updated_at > max_idle]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return [jobs.fail(job.id, etag=job.etag, state_update={"error": "stalled"}) for job in stalled]
