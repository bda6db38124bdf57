"""A job's whole lifecycle, with a second service reacting to its events.

The HR service starts a nightly sync and reports progress; the directory
service subscribes to HR's sync jobs and completes the job once the export is
done. Run it with ``python examples/lifecycle.py``.
"""

from __future__ import annotations

from jobledger import (
    ConcurrencyError,
    JobCompleted,
    JobEvent,
    Jobs,
    JobStarted,
    JobUpdated,
)


def describe(event: JobEvent) -> str:
    """One line for an event, as a subscriber would log it."""
    name = type(event).__name__
    detail = ""
    if isinstance(event, JobStarted):
        detail = f"input={event.input}"
    elif isinstance(event, (JobUpdated, JobCompleted)) and event.state_update is not None:
        detail = f"state_update={event.state_update}"
    return f"  [event v{event.version}] {name:<13} status={event.status:<10} {detail}"


def main() -> None:
    """Run the example and print what happens."""
    jobs = Jobs()

    # Any service can watch; this one prints every event of HR's sync jobs.
    jobs.subscribe(lambda event: print(describe(event)), service="hr", type="sync")

    # The directory service completes the job when HR says the export is done.
    def directory_service(event: JobEvent) -> None:
        if isinstance(event, JobUpdated) and event.status == "exported":
            print("  directory service: export seen, importing and completing the job")
            jobs.complete(event.job_id, etag=event.etag, state_update={"imported": True})

    jobs.subscribe(directory_service, service="hr", events=JobUpdated)

    print("HR service starts a job:")
    job = jobs.start(
        service="hr",
        entity="employee",
        type="sync",
        display_name="Nightly HR sync",
        input={"source": "workday", "since": "2026-11-20"},
        state={"exported": 0},
    )

    print("HR service reports progress:")
    job = jobs.update(job.id, etag=job.etag, status="exporting", state_update={"exported": 120})

    print("A stale writer is refused, and nothing changes:")
    try:
        jobs.update(job.id, etag="an-old-etag", state_update={"exported": 0})
    except ConcurrencyError as error:
        print(f"  ConcurrencyError: {error}")

    print("HR service finishes the export:")
    job = jobs.update(job.id, etag=job.etag, status="exported", state_update={"exported": 250})

    job = jobs.get(job.id)
    print(f"\nFinal: status={job.status} version={job.version} state={job.state}")
    print("Update log:")
    for update in jobs.updates(job.id):
        print(
            f"  #{update.update_id} {update.update_type.name:<9} {update.status:<10} "
            f"{update.state_update}"
        )


if __name__ == "__main__":
    main()
