"""The commands that drive and steer runs: ``invoke``, ``resume``, ``cancel`` and ``demo``."""

from __future__ import annotations

import functools
import json
import signal
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, NoReturn

import click
from rich.text import Text

from jobledger import ConcurrencyError, InvalidTransitionError, Jobs, wire
from jobledger._application.defaults import new_id
from jobledger.cli import _progress
from jobledger.cli._app import DEFAULT_APP, App, load_app
from jobledger.cli._errors import (
    JobBusyError,
    NoRepairVariantError,
    NothingToRepairError,
    RunDrivenError,
)
from jobledger.cli._exit import ExitCode, exit_code_of
from jobledger.cli._printable import literal
from jobledger.cli._progress import RunTracker, follow, silence_stdout
from jobledger.cli._render import (
    Hints,
    console,
    dumps,
    emit,
    is_run,
    run_json,
    run_summary,
    steps_table,
    when,
)
from jobledger.cli._root import (
    FORCE,
    actor_of,
    actor_option,
    app_option,
    cli,
    debug_option,
    definition_of,
    hints_of,
    json_option,
    make_runner,
    open_ledger,
    progress_view,
    store_option,
)
from jobledger.cli._store import StoreAddress
from jobledger.demo import DEMO_JOB, FORCE_THRESHOLD
from jobledger.demo import definitions as demo_definitions
from jobledger.runner import (
    RUN_ENTITY,
    RUN_SERVICE,
    DefinitionBusyError,
    JobDefinition,
    RunActiveError,
    Runner,
    RunNotFoundError,
    RunResult,
    RunStatus,
    Selection,
    load_run,
    request_cancel,
    run_result,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from jobledger import Job

__all__ = ["cancel", "demo", "invoke", "resume"]


def _exit(ctx: click.Context, runner: Runner, code: ExitCode) -> NoReturn:
    """Exit with ``code``; at once when a task's thread was abandoned past its timeout.

    Such a thread may never end, and Python would wait for it at exit.
    """
    if runner.abandoned:
        _progress.exit_now(code)
    ctx.exit(code)


def _finish(
    ctx: click.Context,
    jobs: Jobs,
    result: RunResult,
    definition: JobDefinition,
    *,
    as_json: bool,
    hints: Hints | None = None,
    repair_hint: str | None = None,
) -> ExitCode:
    """Print how the run ended (or the run as JSON); return its exit code."""
    _ignore_interrupts(ctx)
    job = jobs.get(result.run_id)
    try:
        if as_json:
            click.echo(dumps(run_json(job, result)))
        else:
            point = result.breakpoint
            repairable = point is not None and all(
                definition.task(name).repair is not None for name in point.tasks
            )
            out = console()
            out.print()
            lines = run_summary(
                result,
                job,
                hints or hints_of(ctx),
                repair_hint=repair_hint,
                repairable=repairable,
            )
            for line in lines:
                out.print(line)
    except BrokenPipeError:
        silence_stdout()  # the reader went away; the exit code still tells how the run ended
    return exit_code_of(result)


def _drive(
    ctx: click.Context,
    jobs: Jobs,
    runner: Runner,
    tracker: RunTracker,
    call: Callable[[], RunResult],
    *,
    headline: Text,
    as_json: bool,
) -> RunResult:
    """Drive a run with ``call``, showing it; turn the refusals into one line each."""
    hints = hints_of(ctx)
    try:
        return follow(
            jobs,
            runner,
            tracker,
            call,
            progress_view(console(), as_json=as_json),
            hints=hints,
            messages=console(stderr=True),
            headline=headline,
        )
    except DefinitionBusyError as err:
        if err.status == RunStatus.BLOCKED:
            repair = hints.command("invoke", "-j", err.definition, "--repair-job", app=True)
            advice = (
                f"resume it (`{repair}` or "
                f"`{hints.command('resume', err.run_id, '--force', 'N', app=True)}`) "
                f"or cancel it (`{hints.command('cancel', err.run_id)}`)"
            )
        elif _driven(jobs, err.run_id):
            advice = f"wait for it to end, or cancel it (`{hints.command('cancel', err.run_id)}`)"
        else:
            resume = hints.command("resume", err.run_id, app=True)
            advice = (
                f"no runner drives it: resume it (`{resume}`) "
                f"or cancel it (`{hints.command('cancel', err.run_id)}`)"
            )
        raise JobBusyError(err.definition, err.run_id, err.status, advice=advice) from err
    except RunActiveError as err:
        raise RunDrivenError(
            err.run_id,
            err.owner,
            err.expires_at,
            until=when(err.expires_at),
            cancel=hints.command("cancel", err.run_id),
        ) from err


def _driven(jobs: Jobs, run_id: str) -> bool:
    """Whether a live runner holds run ``run_id`` (its lease has not run out)."""
    state = run_result(jobs.get(run_id)).state
    lease = state.lease if state is not None else None
    return lease is not None and not lease.expired(datetime.now(UTC))


def _ignore_interrupts(ctx: click.Context) -> None:
    """Ignore Ctrl-C until the command ends: the run is over, and a late one must not undo it."""
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    ctx.call_on_close(lambda: signal.signal(signal.SIGINT, previous))


def _run_new(
    ctx: click.Context,
    jobs: Jobs,
    runner: Runner,
    definition: JobDefinition,
    *,
    selection: Selection,
    force: int | None,
    run_input: object,
    concurrent: bool = False,
    actor: str | None = None,
    as_json: bool,
) -> RunResult:
    """Invoke ``definition`` as a new run, showing it; return how it ended."""
    tasks = selection.select(definition)  # a bad selection is reported before anything starts
    run_id = new_id()
    name = f" ({definition.display_name})" if definition.display_name else ""
    return _drive(
        ctx,
        jobs,
        runner,
        RunTracker(jobs, run_id, tasks=tasks),
        functools.partial(
            runner.invoke,
            definition.identifier,
            selection=selection,
            force=force,
            input=run_input,
            run_id=run_id,
            exclusive=not concurrent,
            actor=actor,
        ),
        headline=literal(f"Run {run_id} of {definition.identifier}{name}", style="bold"),
        as_json=as_json,
    )


def _resume(
    ctx: click.Context,
    jobs: Jobs,
    runner: Runner,
    app: App,
    job: Job,
    *,
    repair: bool,
    force: int | None,
    actor: str | None,
    as_json: bool,
) -> tuple[RunResult, JobDefinition]:
    """Resume the run ``job``, showing it; return how it ended, and its definition."""
    definition = definition_of(app, job.type, run_id=job.id)
    known = load_run(jobs, job.id, definition=definition)
    point = known.breakpoint
    if repair and point is not None:
        lacking = [name for name in point.tasks if definition.task(name).repair is None]
        if lacking:
            resume = hints_of(ctx).command("resume", job.id, "--force", "N", app=True)
            raise NoRepairVariantError(job.id, lacking, resume=resume)
    how = " with repair" if repair else ""
    forced = f", force threshold {force}" if force is not None else ""
    return (
        _drive(
            ctx,
            jobs,
            runner,
            RunTracker(jobs, job.id, known=known),
            functools.partial(runner.resume, job.id, repair=repair, force=force, actor=actor),
            headline=literal(f"Resuming run {job.id} of {job.type}{how}{forced}", style="bold"),
            as_json=as_json,
        ),
        definition,
    )


def _load_run(jobs: Jobs, run_id: str) -> Job:
    job = jobs.get(run_id)
    if not is_run(job):
        detail = f"job {run_id!r} is a {job.service}/{job.entity} job, not a run"
        raise RunNotFoundError(run_id, detail)
    return job


def _parse_input(value: str | None) -> object:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError as err:
        msg = f"not JSON: {err}"
        raise click.BadParameter(msg, param_hint="--input") from None
    except RecursionError:
        msg = "it is nested too deeply to be read"
        raise click.BadParameter(msg, param_hint="--input") from None


@cli.command()
@click.option(
    "-j",
    "--job-identifier",
    "job",
    required=True,
    metavar="JOB",
    help="The job to launch: the identifier of one of the --app's job definitions.",
)
@click.option(
    "-r",
    "--repair-job",
    "repair",
    is_flag=True,
    help=(
        "Resume the latest blocked run of the job with repair instead of launching a new run: "
        "the blocked task's repair variant (a synchronization validation, a forced "
        "provisioning) runs in its place, then the tasks not yet run."
    ),
)
@click.option(
    "-b",
    "--begin-job-step",
    "begin",
    type=int,
    metavar="STEP",
    help="The step (launch order) from which the job starts.",
)
@click.option(
    "-e",
    "--end-job-step",
    "end",
    type=int,
    metavar="STEP",
    help="The step (launch order) at which the job stops (included).",
)
@click.option(
    "-t",
    "--task-identifier",
    "task",
    metavar="TASK",
    help="Launch only this task of the job.",
)
@click.option(
    "-f",
    "--force-synchronization-provisioning",
    "--force",
    "force",
    type=FORCE,
    metavar="N",
    help=(
        "The force threshold handed to guarded tasks (synchronizations, provisionings): how "
        "many changes they may make before they block instead (each guarded task reads it; "
        "the demo's synchronization blocks over 50 changes without it)."
    ),
)
@click.option(
    "-c",
    "--task-type",
    "task_type",
    metavar="TYPE",
    help="Launch only the first task (in launch order) of this type.",
)
@click.option(
    "-s",
    "--task-string-contains",
    "contains",
    metavar="TEXT",
    help="Launch every task whose identifier contains TEXT.",
)
@click.option(
    "--input",
    "run_input",
    metavar="JSON",
    help="The run's input: a JSON value handed to every task.",
)
@click.option(
    "--concurrent",
    is_flag=True,
    help=(
        "Start the run even if the job already has a running or blocked run. Without it, "
        "such an invoke is refused (exit code 10), as Usercube never runs one job twice at once."
    ),
)
@actor_option
@app_option
@store_option
@json_option
@debug_option
@click.pass_context
def invoke(  # noqa: PLR0917  (one parameter per option)
    ctx: click.Context,
    job: str,
    repair: bool,  # noqa: FBT001
    begin: int | None,
    end: int | None,
    task: str | None,
    force: int | None,
    task_type: str | None,
    contains: str | None,
    run_input: str | None,
    concurrent: bool,  # noqa: FBT001
    actor: str | None,
    app: str,
    store: str,
    as_json: bool,  # noqa: FBT001
) -> NoReturn:
    """Launch a job and follow its run to the end (Usercube-Invoke-Job).

    The job's tasks run step by step, in launch order; the tasks of a step
    run together. The run is recorded in the store as it goes, so other
    processes can watch (jobledger watch), cancel (jobledger cancel) and
    resume (jobledger resume) it. Progress shows live on a terminal, one line
    per change otherwise.

    A job runs once at a time: while it has a running or blocked run, invoke
    is refused (exit code 10) naming that run, unless --concurrent is given.
    --repair-job resumes its blocked run with repair instead.

    Ctrl-C asks the run to cancel: the running tasks finish, no new task
    starts, and the run ends canceled. A second Ctrl-C, SIGTERM, or the
    output closing (invoke ... | head -1) stops at once (exit code 130): the
    running tasks are recorded canceled and the run is let go, left running
    with no runner, and jobledger resume takes it over at once (or jobledger
    cancel cancels it; after a second Ctrl-C, the first one's cancel request
    stands, so both end it canceled).

    --actor names who invokes: the actor of every change the run makes (see
    jobledger history).

    The exit code tells how the run ended (see jobledger --help).
    """
    actor = actor_of(ctx, actor)
    selection = Selection(
        begin_step=begin, end_step=end, task=task, task_type=task_type, contains=contains
    )
    if repair and (selection != Selection() or run_input is not None or concurrent):
        msg = (
            "--repair-job resumes the blocked run as it was launched; "
            "leave out -b, -e, -t, -c, -s, --input and --concurrent"
        )
        raise click.UsageError(msg, ctx)
    value = _parse_input(run_input)
    loaded = load_app(app)
    jobs = open_ledger(ctx, store, loaded, create=True)
    definition = definition_of(loaded, job)
    runner = make_runner(ctx, loaded, jobs)
    if repair:
        page = jobs.find(
            service=RUN_SERVICE,
            entity=RUN_ENTITY,
            type=job,
            status=RunStatus.BLOCKED.value,
            limit=1,
        )
        if not page.jobs:
            raise NothingToRepairError(job)
        result, definition = _resume(
            ctx,
            jobs,
            runner,
            loaded,
            page.jobs[0],
            repair=True,
            force=force,
            actor=actor,
            as_json=as_json,
        )
        _exit(ctx, runner, _finish(ctx, jobs, result, definition, as_json=as_json))
    result = _run_new(
        ctx,
        jobs,
        runner,
        definition,
        selection=selection,
        force=force,
        run_input=value,
        concurrent=concurrent,
        actor=actor,
        as_json=as_json,
    )
    repair_hint = hints_of(ctx).command("invoke", "-j", job, "--repair-job", app=True)
    code = _finish(ctx, jobs, result, definition, as_json=as_json, repair_hint=repair_hint)
    _exit(ctx, runner, code)


@cli.command()
@click.argument("run_id", metavar="ID")
@click.option(
    "--repair",
    is_flag=True,
    help=(
        "Run the blocked tasks' repair variants in their place (a synchronization "
        "validation, a forced provisioning)."
    ),
)
@click.option(
    "-f",
    "--force",
    type=FORCE,
    metavar="N",
    help="A new force threshold for guarded tasks; without it the run keeps its own.",
)
@actor_option
@app_option
@store_option
@json_option
@debug_option
@click.pass_context
def resume(  # noqa: PLR0917  (one parameter per option)
    ctx: click.Context,
    run_id: str,
    repair: bool,  # noqa: FBT001
    force: int | None,
    actor: str | None,
    app: str,
    store: str,
    as_json: bool,  # noqa: FBT001
) -> NoReturn:
    """Resume run ID from its breakpoint, or take over a run whose runner is gone.

    A blocked run runs its blocked tasks again (with --repair, their repair
    variants; a blocked task without one is a usage error), then only the
    tasks that had not run. A running run is taken over only when no runner
    holds it: at once when its runner let it go (a second Ctrl-C, SIGTERM, a
    closed output), otherwise once the lease its runner recorded has run out
    (a runner renews its lease while it lives; the command line's lasts 10
    seconds unless --app sets another). Resuming a run a live runner holds is
    refused (exit code 10) naming that runner and when its lease ends.
    "Resuming run ..." is printed once this command has claimed the run. The
    run's job definition must be in --app.

    --actor names who resumes: the actor of every change the run makes from
    its claim on (see jobledger history).

    The exit code tells how the run ended, as for invoke.
    """
    actor = actor_of(ctx, actor)
    loaded = load_app(app)
    jobs = open_ledger(ctx, store, loaded)
    job = _load_run(jobs, run_id)
    runner = make_runner(ctx, loaded, jobs)
    result, definition = _resume(
        ctx, jobs, runner, loaded, job, repair=repair, force=force, actor=actor, as_json=as_json
    )
    _exit(ctx, runner, _finish(ctx, jobs, result, definition, as_json=as_json))


@cli.command()
@click.argument("job_id", metavar="ID")
@click.option(
    "--etag",
    metavar="ETAG",
    help=(
        "Cancel only if the job's ETag is still ETAG (as `jobledger show` printed it); "
        "without it, the job is canceled whatever changed since you last looked."
    ),
)
@actor_option
@store_option
@json_option
@debug_option
@click.pass_context
def cancel(  # noqa: PLR0917  (click passes one argument per option)
    ctx: click.Context,
    job_id: str,
    etag: str | None,
    actor: str | None,
    store: str,
    as_json: bool,  # noqa: FBT001
) -> None:
    """Cancel job or run ID.

    A run that a live runner drives is asked to stop: that runner (in
    whatever process) sees the request within a moment, lets the running
    tasks finish, starts no new task, and ends the run canceled. A run
    nobody drives (blocked, let go by its runner, or whose runner's lease
    ran out) is canceled at once, its running tasks with it. Any other job
    is canceled at once. --actor names who cancels (see jobledger history).
    """
    jobs = open_ledger(ctx, store)
    actor = actor_of(ctx, actor)
    job = jobs.get(job_id)
    if etag is not None and etag != job.etag:
        raise ConcurrencyError(job_id, etag, job.etag)
    if job.phase.is_terminal:
        raise InvalidTransitionError(job_id, job.phase.value, "cancel")
    if not is_run(job):
        job = jobs.cancel(job_id, etag=job.etag, actor=actor)
        message = f"Job {job_id} canceled."
        document = wire.encode(job)
    else:
        asked = request_cancel(jobs, job_id, actor=actor)
        lease = asked.state.lease if asked.state is not None else None
        if asked.status.is_terminal or lease is None:
            message = f"Run {job_id} canceled."
        else:
            until = when(lease.expires_at)
            message = (
                f"Cancel requested for run {job_id}: its runner lets the running tasks finish, "
                f"then ends it canceled. (Should that runner be gone, "
                f"`{hints_of(ctx).command('cancel', job_id)}` after {until}, when its lease "
                "runs out, cancels it at once.)"
            )
        document = run_json(jobs.get(job_id), load_run(jobs, job_id)) if as_json else {}
    if as_json:
        click.echo(dumps(document))
    else:
        console().print(literal(message))


@cli.command()
@click.option(
    "-f",
    "--force-synchronization-provisioning",
    "--force",
    "force",
    type=FORCE,
    metavar="N",
    help=(
        f"A force threshold for the run: the synchronization blocks over {FORCE_THRESHOLD} "
        "changes without one (the demo makes 66)."
    ),
)
@store_option
@debug_option
@click.pass_context
def demo(ctx: click.Context, force: int | None, store: str) -> NoReturn:
    """Run the bundled demo job, hr-nightly, and show it block at its synchronization.

    hr-nightly is what an identity-management system runs every night: it
    exports the employees from the HR system and the accounts from the
    directory (that export in warning mode), synchronizes them into the
    identity repository, then provisions the directory. The synchronization
    is guarded: this night it finds 66 changes, more than its force threshold
    of 50, so it blocks the run. The demo then prints the command that
    resumes the run with repair (the synchronization validation), which
    completes it.

    The demo exits 0 when the run blocked as designed or completed.
    """
    app = App(name=DEFAULT_APP, definitions=demo_definitions())
    jobs = open_ledger(ctx, store, app, create=True)
    runner = make_runner(ctx, app, jobs)
    definition = runner.definition(DEMO_JOB)
    out = console()
    out.print(
        Text(
            "jobledger demo: hr-nightly, the nightly job of an identity-management system.",
            style="bold",
        )
    )
    out.print(literal(f"Ledger: {StoreAddress.parse(store).describe()}"))
    out.print(Text(f"Steps ({hints_of(ctx).command('steps', '-j', DEMO_JOB)}):"))
    emit(out, steps_table(definition))
    out.print()
    result = _run_new(
        ctx,
        jobs,
        runner,
        definition,
        selection=Selection(),
        force=force,
        run_input=None,
        as_json=False,
    )
    hints = hints_of(ctx, demo=True)
    repair_hint = hints.command("invoke", "-j", DEMO_JOB, "--repair-job", app=True)
    code = _finish(
        ctx, jobs, result, definition, as_json=False, hints=hints, repair_hint=repair_hint
    )
    if result.status is RunStatus.BLOCKED:
        out.print()
        out.print(
            Text(
                "That block is the demo's point: the synchronization stopped before making more "
                f"changes than its threshold allows. `{repair_hint}` validates them and finishes "
                f"the run; then `{hints.command('history', result.run_id)}` shows its log."
            )
        )
    _exit(ctx, runner, ExitCode.OK if code in {ExitCode.OK, ExitCode.BLOCKED} else code)
