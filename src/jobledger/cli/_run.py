"""The commands that drive and steer runs: ``invoke``, ``resume``, ``cancel`` and ``demo``."""

from __future__ import annotations

import functools
import json
import signal
import threading
from typing import TYPE_CHECKING, NoReturn

import click
from rich.text import Text

from jobledger import ConcurrencyError, InvalidTransitionError, Jobs, wire
from jobledger._application.defaults import new_id
from jobledger.cli._app import DEFAULT_APP, load_definitions
from jobledger.cli._errors import NothingToRepairError
from jobledger.cli._exit import ExitCode, exit_code_of
from jobledger.cli._printable import literal
from jobledger.cli._progress import follow
from jobledger.cli._render import (
    Hints,
    console,
    dumps,
    emit,
    is_interrupted,
    is_run,
    run_summary,
    steps_table,
)
from jobledger.cli._root import (
    FORCE,
    TAKEOVER_SECONDS,
    app_option,
    cli,
    debug_option,
    definition_of,
    hints_of,
    json_option,
    make_runner,
    open_repository,
    progress_view,
    store_option,
)
from jobledger.cli._store import StoreAddress
from jobledger.demo import DEMO_JOB, FORCE_THRESHOLD
from jobledger.demo import definitions as demo_definitions
from jobledger.runner import (
    RUN_ENTITY,
    RUN_SERVICE,
    JobDefinition,
    Runner,
    RunNotFoundError,
    RunResult,
    RunStatus,
    Selection,
    request_cancel,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from jobledger import Job

__all__ = ["cancel", "demo", "invoke", "resume"]


def _finish(
    jobs: Jobs,
    result: RunResult,
    definition: JobDefinition,
    hints: Hints,
    *,
    as_json: bool,
    repair_hint: str | None = None,
) -> ExitCode:
    """Print how the run ended (or its job as JSON); return its exit code."""
    _ignore_interrupts()
    job = jobs.get(result.run_id)
    if as_json:
        click.echo(dumps(wire.encode(job)))
    else:
        point = result.breakpoint
        repairable = point is not None and all(
            definition.task(name).repair is not None for name in point.tasks
        )
        out = console()
        out.print()
        for line in run_summary(result, job, hints, repair_hint=repair_hint, repairable=repairable):
            out.print(line)
    return exit_code_of(result)


def _ignore_interrupts() -> None:
    """Ignore Ctrl-C until the command ends: the run is over, and a late one must not undo it."""
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    click.get_current_context().call_on_close(lambda: signal.signal(signal.SIGINT, previous))


def _run_new(
    ctx: click.Context,
    jobs: Jobs,
    runner: Runner,
    definition: JobDefinition,
    *,
    selection: Selection,
    force: int | None,
    run_input: object,
    as_json: bool,
) -> RunResult:
    """Invoke ``definition`` as a new run, showing it; return how it ended."""
    selection.select(definition)  # a bad selection is reported before anything starts
    run_id = new_id()
    out = console()
    if not as_json:
        name = f" ({definition.display_name})" if definition.display_name else ""
        out.print(literal(f"Run {run_id} of {definition.identifier}{name}", style="bold"))
    return follow(
        jobs,
        run_id,
        functools.partial(
            runner.invoke,
            definition.identifier,
            selection=selection,
            force=force,
            input=run_input,
            run_id=run_id,
        ),
        progress_view(out, as_json=as_json),
        hints_of(ctx),
    )


def _resume(
    ctx: click.Context,
    jobs: Jobs,
    app: str,
    definitions: Sequence[JobDefinition],
    job: Job,
    *,
    repair: bool,
    force: int | None,
    as_json: bool,
) -> tuple[RunResult, JobDefinition]:
    """Resume the run ``job``, showing it; return how it ended, and its definition."""
    # A run whose runner was stopped by a second Ctrl-C is driven by nobody: take it over now.
    takeover = 0.0 if is_interrupted(job) else TAKEOVER_SECONDS
    definition = definition_of(app, definitions, job.type, run_id=job.id)
    runner = make_runner(app, jobs, definitions, takeover_after=takeover)
    out = console()
    if not as_json:
        how = " with repair" if repair else ""
        forced = f", force threshold {force}" if force is not None else ""
        out.print(literal(f"Resuming run {job.id} of {job.type}{how}{forced}", style="bold"))
    result = follow(
        jobs,
        job.id,
        functools.partial(runner.resume, job.id, repair=repair, force=force),
        progress_view(out, as_json=as_json),
        hints_of(ctx),
        job=job,
    )
    return result, definition


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

    Ctrl-C asks the run to cancel: the running tasks finish, no new task
    starts, and the run ends canceled. A second Ctrl-C stops at once: the
    run is left running, with no runner and no cancel request, and
    jobledger resume takes it over (or jobledger cancel cancels it).

    The exit code tells how the run ended (see jobledger --help).
    """
    selection = Selection(
        begin_step=begin, end_step=end, task=task, task_type=task_type, contains=contains
    )
    if repair and (selection != Selection() or run_input is not None):
        msg = (
            "--repair-job resumes the blocked run as it was launched; "
            "leave out -b, -e, -t, -c, -s and --input"
        )
        raise click.UsageError(msg, ctx)
    value = _parse_input(run_input)
    definitions = load_definitions(app)
    jobs = Jobs(repository=open_repository(ctx, store, create=True))
    definition = definition_of(app, definitions, job)
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
            ctx, jobs, app, definitions, page.jobs[0], repair=True, force=force, as_json=as_json
        )
        ctx.exit(_finish(jobs, result, definition, hints_of(ctx), as_json=as_json))
    result = _run_new(
        ctx,
        jobs,
        make_runner(app, jobs, definitions),
        definition,
        selection=selection,
        force=force,
        run_input=value,
        as_json=as_json,
    )
    hints = hints_of(ctx)
    repair_hint = hints.command("invoke", "-j", job, "--repair-job", app=True)
    ctx.exit(_finish(jobs, result, definition, hints, as_json=as_json, repair_hint=repair_hint))


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
    app: str,
    store: str,
    as_json: bool,  # noqa: FBT001
) -> NoReturn:
    """Resume run ID from its breakpoint, or take over a run whose runner stopped.

    A blocked run runs its blocked tasks again (with --repair, their repair
    variants), then only the tasks that had not run. A running run is taken
    over when its runner is gone: at once when a second Ctrl-C stopped it,
    otherwise once it has been silent for 10 seconds (the command line's
    runner writes a heartbeat every 2 seconds while tasks run). The run's
    job definition must be in --app.

    The exit code tells how the run ended, as for invoke.
    """
    definitions = load_definitions(app)
    jobs = Jobs(repository=open_repository(ctx, store))
    job = _load_run(jobs, run_id)
    result, definition = _resume(
        ctx, jobs, app, definitions, job, repair=repair, force=force, as_json=as_json
    )
    ctx.exit(_finish(jobs, result, definition, hints_of(ctx), as_json=as_json))


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
@store_option
@json_option
@debug_option
@click.pass_context
def cancel(
    ctx: click.Context,
    job_id: str,
    etag: str | None,
    store: str,
    as_json: bool,  # noqa: FBT001
) -> None:
    """Cancel job or run ID.

    A running run is asked to stop: its runner (in whatever process) sees
    the request within a moment, lets the running tasks finish, starts no
    new task, and ends the run canceled. A blocked run, or a run whose
    runner was stopped by a second Ctrl-C, is canceled at once. Any other
    job is canceled at once.
    """
    jobs = Jobs(repository=open_repository(ctx, store))
    job = jobs.get(job_id)
    if etag is not None and etag != job.etag:
        raise ConcurrencyError(job_id, etag, job.etag)
    if job.phase.is_terminal:
        raise InvalidTransitionError(job_id, job.phase.value, "cancel")
    if not is_run(job):
        job = jobs.cancel(job_id, etag=job.etag)
        message = f"Job {job_id} canceled."
    else:
        interrupted = is_interrupted(job)
        request_cancel(jobs, job_id)
        job = jobs.get(job_id)
        if interrupted and not job.phase.is_terminal:
            # Its runner is known to be gone: nobody else would end it.
            job = jobs.cancel(job_id, etag=job.etag)
        if job.phase.is_terminal:
            message = f"Run {job_id} canceled."
        else:
            message = (
                f"Cancel requested for run {job_id}: its running tasks finish, then it ends "
                f"canceled. (Should its runner be gone, "
                f"`{hints_of(ctx).command('resume', job_id)}` ends it once it has been silent "
                f"for {TAKEOVER_SECONDS:g} s.)"
            )
    if as_json:
        click.echo(dumps(wire.encode(job)))
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
    definitions = demo_definitions()
    jobs = Jobs(repository=open_repository(ctx, store, create=True))
    runner = make_runner(DEFAULT_APP, jobs, definitions)
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
    code = _finish(jobs, result, definition, hints, as_json=False, repair_hint=repair_hint)
    if result.status is RunStatus.BLOCKED:
        out.print()
        out.print(
            Text(
                "That block is the demo's point: the synchronization stopped before making more "
                f"changes than its threshold allows. `{repair_hint}` validates them and finishes "
                f"the run; then `{hints.command('history', result.run_id)}` shows its log."
            )
        )
    ctx.exit(ExitCode.OK if code in {ExitCode.OK, ExitCode.BLOCKED} else code)
