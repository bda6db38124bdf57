"""The commands that read the ledger: ``steps``, ``show``, ``history``, ``list``, ``watch``."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.text import Text

from jobledger import EVENT_TYPES, EventFilter, InvalidJobDataError, JobPhase, JobQuery, wire
from jobledger._core.query import MAX_PAGE_SIZE
from jobledger.cli._app import load_app
from jobledger.cli._printable import literal, printable
from jobledger.cli._render import (
    console,
    dumps,
    emit,
    error_lines,
    event_json,
    event_line,
    history_json,
    is_launch,
    is_run,
    job_view,
    jobs_table,
    launch_lines,
    launch_records,
    launches_table,
    page_json,
    run_json,
    run_summary,
    steps_json,
    steps_table,
    updates_table,
    when,
)
from jobledger.cli._root import (
    app_option,
    cli,
    debug_option,
    definition_of,
    hints_of,
    json_option,
    open_ledger,
    open_repository,
    settings,
    store_option,
)
from jobledger.runner import (
    RUN_ENTITY,
    RUN_SERVICE,
    Launch,
    load_launches,
    load_run,
    run_result,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from jobledger import FeedEntry, Job, JobEvent, JobPage, Jobs, Repository
    from jobledger.runner import JobDefinition

__all__ = ["history", "list_command", "show", "steps_command", "watch"]

F = TypeVar("F", bound="Callable[..., Any]")

# The most characters of a refused cursor an error repeats.
_SHOWN_CURSOR = 60

_EVENT_KINDS = {kind.__name__.removeprefix("Job").lower(): kind for kind in EVENT_TYPES}


@cli.command("steps")
@click.option(
    "-j",
    "--job-identifier",
    "job",
    required=True,
    metavar="JOB",
    help="The job whose steps to list.",
)
@app_option
@json_option
@debug_option
def steps_command(job: str, app: str, as_json: bool) -> None:  # noqa: FBT001
    """List a job's steps and their tasks in launch order (Usercube-Get-JobSteps).

    Tasks with the same launch order form a step and run together; steps run
    one after the other. A task runs only when its parents in the run
    completed, one of them with output.
    """
    definition = definition_of(load_app(app), job)
    if as_json:
        click.echo(dumps(steps_json(definition)))
        return
    out = console()
    name = f" ({definition.display_name})" if definition.display_name else ""
    count = len({task.launch_order for task in definition.tasks})
    out.print(
        literal(f"{definition.identifier}{name}: {len(definition.tasks)} tasks in {count} steps")
    )
    emit(out, steps_table(definition))


def _run_definition(app: str, job: Job) -> JobDefinition | None:
    """The definition of run ``job`` among ``app``'s, if it has it (to list the pending tasks)."""
    for definition in load_app(app).definitions:
        if definition.identifier == job.type:
            return definition
    return None


def _launch_count(job: Job) -> int:
    state = run_result(job).state
    return 0 if state is None else state.launches


@cli.command()
@click.argument("job_id", metavar="ID")
@app_option
@store_option
@json_option
@debug_option
@click.pass_context
def show(ctx: click.Context, job_id: str, app: str, store: str, as_json: bool) -> None:  # noqa: FBT001
    """Show job or run ID: its fields; for a run its progress, lease and tasks.

    A run shows its progress (tasks done of all), the drive that holds or last
    held it and its lease, each task's status by step (read from the task's
    latest launch), each failed task's error with its traceback, and what to
    do next. Tasks not launched yet are listed (pending) when --app defines
    the run's job. A task launch (ID/N, a job of its own) shows its task, its
    status and its error with the traceback.

    With --json, a job in the wire format (decode it with
    jobledger.wire.decode_job); a run as an object with Run (its job in the
    wire format), Status, Progress and Tasks (each task's outcome).
    """
    jobs = open_ledger(ctx, store)
    job = jobs.get(job_id)
    if not is_run(job):
        _show_job(job, as_json=as_json)
        return
    result = load_run(jobs, job_id, definition=_run_definition(app, job))
    if as_json:
        click.echo(dumps(run_json(job, result)))
        return
    out = console()
    emit(out, job_view(job, result))
    _, total = result.progress
    missing = total - len(result.outcomes)
    if missing > 0:
        out.print(
            literal(
                f"(and {missing} task(s) not launched yet: give the --app that defines job "
                f"{job.type!r} to list them)",
                style="dim",
            )
        )
    errors = error_lines(result)
    if errors:
        out.print()
        out.print(Text("Errors:", style="bold"))
        for line in errors:
            out.print(line)
    out.print()
    for line in run_summary(result, job, hints_of(ctx)):
        out.print(line)


def _show_job(job: Job, *, as_json: bool) -> None:
    """Show a job that is not a run; a task launch with its error's traceback."""
    if as_json:
        click.echo(dumps(wire.encode(job)))
        return
    out = console()
    emit(out, job_view(job))
    if not is_launch(job):
        return
    try:
        launch = Launch.of(job)
    except ValueError:
        return  # a launch of another layout: its fields say it all
    out.print()
    for line in launch_lines(launch):
        out.print(line)


@cli.command()
@click.argument("job_id", metavar="ID")
@store_option
@json_option
@debug_option
@click.pass_context
def history(ctx: click.Context, job_id: str, store: str, as_json: bool) -> None:  # noqa: FBT001
    """Show the update log of job or run ID, oldest first; for a run, its launch groups too.

    Row 0 is the start; each row says who acted in its "by" column (the
    command's actor, "-" when none was named).

    A run's launch groups say which tasks each step launched, in which drive
    (1 for the invoke, then one per resume or takeover) and how each launch
    ended, read from the launches' own jobs. Each launch is a job, ID/N (N
    from 1 in launch order): its own update log is jobledger history ID/N.
    """
    jobs = open_ledger(ctx, store)
    job = jobs.get(job_id)
    updates = jobs.updates(job_id)
    records = (
        launch_records(load_launches(jobs, job_id, _launch_count(job))) if is_run(job) else None
    )
    if as_json:
        click.echo(dumps(history_json(job, updates, records)))
        return
    out = console()
    out.print(literal(f"Job {job.id}: started {when(job.created_at)}, {len(updates)} updates"))
    emit(out, updates_table(job, updates))
    if records is not None:
        out.print()
        out.print(Text("Launch groups:", style="bold"))
        emit(out, launches_table(records))
        out.print(Text(f"A launch's own log: {hints_of(ctx).command('history', f'{job_id}/N')}"))


def _filter_options(function: F) -> F:
    for option in reversed(
        [
            click.option("--service", multiple=True, help="Only jobs of this service."),
            click.option("--entity", multiple=True, help="Only jobs about this entity."),
            click.option(
                "--type",
                "job_type",
                multiple=True,
                help="Only jobs of this type (for runs: the job identifier).",
            ),
            click.option("--status", multiple=True, help="Only jobs with this status."),
            click.option(
                "--phase",
                multiple=True,
                type=click.Choice([phase.value for phase in JobPhase]),
                help="Only jobs in this phase.",
            ),
        ]
    ):
        function = option(function)
    return function


@cli.command("list")
@_filter_options
@click.option(
    "--runs",
    is_flag=True,
    help=(
        "Only runs: the jobs of service jobledger.runner and entity job (not their task "
        "launches, which are jobs of entity task)."
    ),
)
@click.option(
    "--limit",
    type=click.IntRange(1, MAX_PAGE_SIZE),
    default=20,
    show_default=True,
    help="The most jobs on one page.",
)
@click.option(
    "--cursor",
    metavar="CURSOR",
    help="Start after the page that printed this next cursor.",
)
@store_option
@json_option
@debug_option
@click.pass_context
def list_command(  # noqa: PLR0917  (one parameter per option)
    ctx: click.Context,
    service: tuple[str, ...],
    entity: tuple[str, ...],
    job_type: tuple[str, ...],
    status: tuple[str, ...],
    phase: tuple[str, ...],
    runs: bool,  # noqa: FBT001
    limit: int,
    cursor: str | None,
    store: str,
    as_json: bool,  # noqa: FBT001
) -> None:
    """List jobs and runs, newest first, a page at a time.

    Each filter may be given more than once (any of the values matches).
    Runs are jobs of service jobledger.runner and entity job whose type is
    the job identifier; each launch of a task is a job too (entity task, id
    RUN/N): --runs lists only the runs. When more jobs match, the next cursor
    is printed: pass it to --cursor for the next page.
    """
    if runs and (service or entity):
        msg = "--runs lists the runs' service and entity: leave out --service and --entity"
        raise click.UsageError(msg, ctx)
    if runs:
        service, entity = (RUN_SERVICE,), (RUN_ENTITY,)
    jobs = open_ledger(ctx, store)
    query = JobQuery(
        service=service or None,
        entity=entity or None,
        type=job_type or None,
        status=status or None,
        phase=phase or None,
        limit=limit,
        cursor=cursor,
    )
    page = _find(jobs, query)
    if as_json:
        click.echo(dumps(page_json(page)))
        return
    out = console()
    if not page.jobs:
        out.print("No jobs.")
    else:
        emit(out, jobs_table(page))
    if page.next_cursor is not None:
        words = ["list", "--runs"] if runs else ["list"]
        for flag, values in (
            ("--service", () if runs else service),
            ("--entity", () if runs else entity),
            ("--type", job_type),
            ("--status", status),
            ("--phase", phase),
        ):
            for value in values:
                words += [flag, value]
        if limit != 20:  # noqa: PLR2004  (the default)
            words += ["--limit", str(limit)]
        out.print(literal(f"next cursor: {page.next_cursor}"))
        out.print(Text(f"next page: {hints_of(ctx).command(*words, '--cursor', page.next_cursor)}"))


def _find(jobs: Jobs, query: JobQuery) -> JobPage:
    """The page ``query`` asks for; a cursor the ledger did not make is a usage error."""
    try:
        return jobs.find(query)
    except InvalidJobDataError as err:
        cursor = query.cursor
        if err.field != "cursor" or cursor is None:
            raise
        shown = cursor if len(cursor) <= _SHOWN_CURSOR else cursor[: _SHOWN_CURSOR - 1] + "…"
        msg = (
            f"{printable(shown)!r} is not a cursor this ledger made; give the next cursor "
            "that `jobledger list` printed"
        )
        raise click.BadParameter(msg, param_hint="--cursor") from None


@cli.command()
@_filter_options
@click.option(
    "--event",
    "kinds",
    multiple=True,
    type=click.Choice(list(_EVENT_KINDS)),
    help="Only events of this kind.",
)
@click.option(
    "--run",
    "run_id",
    metavar="ID",
    help="Only the events of run ID and of its task launches (jobs ID/1, ID/2, ...).",
)
@click.option(
    "--from-start",
    is_flag=True,
    help="Replay the whole feed first, instead of starting with the next event.",
)
@click.option(
    "--after",
    type=click.IntRange(0),
    metavar="POSITION",
    help="Start after this feed position (as printed: #POSITION).",
)
@click.option(
    "--max-events",
    type=click.IntRange(1),
    metavar="N",
    help="Stop after N events.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0),
    metavar="SECONDS",
    help="Stop after SECONDS.",
)
@store_option
@json_option
@debug_option
@click.pass_context
def watch(  # noqa: PLR0917  (one parameter per option)
    ctx: click.Context,
    service: tuple[str, ...],
    entity: tuple[str, ...],
    job_type: tuple[str, ...],
    status: tuple[str, ...],
    phase: tuple[str, ...],
    kinds: tuple[str, ...],
    run_id: str | None,
    from_start: bool,  # noqa: FBT001
    after: int | None,
    max_events: int | None,
    timeout: float | None,
    store: str,
    as_json: bool,  # noqa: FBT001
) -> None:
    """Follow the ledger's events live, as they are committed, until Ctrl-C.

    Every change of every job (from any process sharing the store) is one
    event, with its feed position (and "by ACTOR" when the change named its
    actor). The filters are those of list, plus the
    event kind and --run: a run's events and its task launches' (a launch's
    end, its progress) together. With --json, one JSON object per line:
    {"Position": N, "Event": <the event in the wire format>}.
    """
    service_url = settings(ctx).api.url
    jobs = open_ledger(ctx, store) if service_url is not None else None
    repository = open_repository(ctx, store) if jobs is None else None
    event_filter = EventFilter(
        service=service or None,
        entity=entity or None,
        type=job_type or None,
        events=[_EVENT_KINDS[kind] for kind in kinds] or None,
    )
    phases = {JobPhase(value) for value in phase}

    prefix = f"{run_id}/"

    def wanted(event: JobEvent) -> bool:
        return (
            event_filter.matches(event)
            and (run_id is None or event.job_id == run_id or event.job_id.startswith(prefix))
            and (not status or event.status in status)
            and (not phases or JobPhase.of_status(event.status) in phases)
        )

    start = 0 if from_start else None
    position = after if after is not None else start
    deadline = None if timeout is None else time.monotonic() + timeout
    if repository is None:
        _follow_service(
            jobs, position, wanted, as_json=as_json, max_events=max_events, deadline=deadline
        )
        return
    if position is None:
        position = repository.feed_head()
    if not as_json:
        console(stderr=True).print(
            Text(f"Watching the events after #{position} (Ctrl-C stops).", style="dim")
        )
    _follow_feed(
        repository,
        position,
        wanted,
        as_json=as_json,
        max_events=max_events,
        deadline=deadline,
    )


def _follow_service(
    jobs: object,
    position: int | None,
    wanted: Callable[[JobEvent], bool],
    *,
    as_json: bool,
    max_events: int | None,
    deadline: float | None,
) -> None:
    """Follow the event feed of the jobs service (``--api-url``): its Server-Sent Events."""
    feed: Callable[..., Iterator[FeedEntry]] = getattr(jobs, "feed")  # noqa: B009  (JobsClient's)
    stop = threading.Event()
    if deadline is not None:
        timer = threading.Timer(max(deadline - time.monotonic(), 0.0), stop.set)
        timer.daemon = True
        timer.start()
    if not as_json:
        where = "now" if position is None else f"#{position}"
        console(stderr=True).print(
            Text(f"Watching the service's events after {where} (Ctrl-C stops).", style="dim")
        )
    printer = _EventPrinter(wanted, as_json=as_json, max_events=max_events)
    try:
        for entry in feed(after=position, stop=stop):
            if printer.take(entry):
                return
    except KeyboardInterrupt:
        return
    finally:
        stop.set()


class _EventPrinter:
    """Prints the wanted events of a feed, as lines or JSON, up to a number of them."""

    def __init__(
        self, wanted: Callable[[JobEvent], bool], *, as_json: bool, max_events: int | None
    ) -> None:
        self.wanted = wanted
        self.as_json = as_json
        self.max_events = max_events
        self.shown = 0
        self.out = console()

    def take(self, entry: FeedEntry) -> bool:
        """Print ``entry`` if wanted; return whether enough events were shown."""
        if not self.wanted(entry.event):
            return False
        if self.as_json:
            click.echo(dumps(event_json(entry), indent=None))
        else:
            self.out.print(event_line(entry))
        self.shown += 1
        return self.max_events is not None and self.shown >= self.max_events


def _follow_feed(
    repository: Repository,
    position: int,
    wanted: Callable[[JobEvent], bool],
    *,
    as_json: bool,
    max_events: int | None,
    deadline: float | None,
) -> None:
    printer = _EventPrinter(wanted, as_json=as_json, max_events=max_events)
    wait_for_feed = getattr(repository, "wait_for_feed", None)
    try:
        while True:
            entries = repository.read_feed(after=position, limit=100)
            for entry in entries:
                position = entry.position
                if printer.take(entry):
                    return
            if entries:
                continue
            pause = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
            if pause <= 0:
                return
            if callable(wait_for_feed):
                wait_for_feed(position, pause)
            else:
                time.sleep(pause)
    except KeyboardInterrupt:
        return
