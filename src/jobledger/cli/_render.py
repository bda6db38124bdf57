"""What the command line prints: jobs, runs, logs, steps and events, for people and as JSON.

People get rich text (colour on a terminal, plain text elsewhere, none with
``NO_COLOR``), never markup: text from the ledger is shown literally, its
control characters escaped (:mod:`jobledger.cli._printable`). ``--json`` gets
the wire format of :mod:`jobledger.wire` (``JobId``, ``State``, ...), wrapped
in objects with the same PascalCase keys.
"""

from __future__ import annotations

import errno
import json
import os
import shlex
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import attrs
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from jobledger import JobStatus, JsonObject, JsonValue, thaw, wire
from jobledger.cli._password import masked
from jobledger.cli._printable import literal, printable
from jobledger.runner import (
    RUN_ENTITY,
    RUN_SERVICE,
    TASK_ENTITY,
    RunResult,
    RunStatus,
    TaskStatus,
    steps,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from rich.console import RenderableType

    from jobledger import FeedEntry, Job, JobPage, JobUpdate
    from jobledger.runner import JobDefinition, Launch, TaskError, TaskOutcome

__all__ = [
    "STATUS_STYLES",
    "Hints",
    "LaunchRecord",
    "console",
    "dumps",
    "emit",
    "error_lines",
    "event_json",
    "event_line",
    "history_json",
    "is_launch",
    "is_run",
    "job_view",
    "jobs_table",
    "launch_lines",
    "launch_records",
    "launches_table",
    "page_json",
    "run_json",
    "run_lines",
    "run_summary",
    "run_table",
    "steps_json",
    "steps_table",
    "task_detail",
    "task_status",
    "updates_table",
    "when",
]

#: How text for people is styled, by task or run status.
STATUS_STYLES: Mapping[str, str] = {
    "pending": "dim",
    "running": "cyan",
    "completed": "green",
    "warning": "yellow",
    "failed": "bold red",
    "blocked": "bold magenta",
    "skipped": "dim",
    "canceled": "red",
    "started": "cyan",
}

# Width used when the output is not a terminal and COLUMNS does not say: wide
# enough that log lines and tables are not wrapped in files and pipes.
_PLAIN_WIDTH = 160
_MAX_DETAIL = 120


class _Console(Console):
    """A rich console whose closed output raises :class:`BrokenPipeError` (rich's exits 1)."""

    def on_broken_pipe(self) -> None:
        """Print nothing more, and raise: the command decides how to end."""
        self.quiet = True
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


def console(*, stderr: bool = False) -> Console:
    """A console on standard output (or error): colour only on a terminal, never with NO_COLOR.

    Off a terminal, lines are not wrapped, and tables are as wide as they need
    (up to a generous width) so that files and pipes get whole lines.
    """
    # Markup and emoji codes are never read: what is printed is what the text says.
    out = _Console(stderr=stderr, highlight=False, markup=False, emoji=False)
    if not out.is_terminal:
        out.soft_wrap = True
        if "COLUMNS" not in os.environ:
            out.width = _PLAIN_WIDTH
    return out


def emit(out: Console, renderable: RenderableType) -> None:
    """Print ``renderable``; off a terminal, without the blanks that pad table rows."""
    if out.is_terminal:
        out.print(renderable)
        return
    with out.capture() as captured:
        out.print(renderable)
    for line in captured.get().splitlines():
        out.file.write(line.rstrip() + "\n")
    out.file.flush()


def dumps(value: object, *, indent: int | None = 2) -> str:
    """JSON text for ``--json``: UTF-8 kept as is, one document."""
    separators = (",", ":") if indent is None else None
    return json.dumps(value, ensure_ascii=False, indent=indent, separators=separators)


@attrs.frozen
class Hints:
    """Writes the commands the output suggests, with the options the person gave.

    Attributes:
        store: The ``--store`` to repeat (shown with its password hidden), or
            ``None`` when it came from the environment or is the default.
        app: The ``--app`` to repeat, or ``None`` likewise.
        program: How to call the command line (``.venv/bin/jobledger`` when
            ``jobledger`` is not on the PATH).
        api_url: The ``--api-url`` to repeat (never the client's secret), or ``None``.

    >>> Hints(store="/tmp/x.db", app=None).command("resume", "r1", "--repair", app=True)
    'jobledger resume r1 --repair --store /tmp/x.db'
    """

    store: str | None = attrs.field(
        default=None, repr=lambda store: repr(None if store is None else masked(store))
    )
    app: str | None = None
    program: str = "jobledger"
    api_url: str | None = None

    def command(self, *words: str, app: bool = False) -> str:
        """The program and ``words``, plus ``--app`` (when ``app``) and ``--store``, quoted."""
        parts = [self.program, *words]
        if app and self.app is not None:
            parts += ["--app", self.app]
        if self.api_url is not None:
            parts += ["--api-url", masked(self.api_url)]
        elif self.store is not None:
            parts += ["--store", masked(self.store)]
        return printable(shlex.join(parts))


def when(moment: datetime | None) -> str:
    """A time for people: UTC, to the second.

    >>> when(datetime(2024, 5, 1, 12, 0, 3, 500, tzinfo=UTC))
    '2024-05-01 12:00:03Z'
    """
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def compact(value: JsonValue, limit: int = _MAX_DETAIL) -> str:
    """A JSON value on one line, shortened to ``limit`` characters; strings as they are, printable.

    >>> compact({"done": 10, "total": 42})
    '{"done": 10, "total": 42}'
    """
    text = value if isinstance(value, str) else json.dumps(thaw(value), ensure_ascii=False)
    text = printable(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_run(job: Job) -> bool:
    """Whether ``job`` is a run of the runner (service ``jobledger.runner``, entity ``job``)."""
    return job.service == RUN_SERVICE and job.entity == RUN_ENTITY


def is_launch(job: Job) -> bool:
    """Whether ``job`` is a task launch of a run (service ``jobledger.runner``, entity ``task``)."""
    return job.service == RUN_SERVICE and job.entity == TASK_ENTITY


def _progress(progress: JsonObject | None) -> str:
    if not progress:
        return ""
    done, total = progress.get("done"), progress.get("total")
    if isinstance(done, int) and isinstance(total, int) and len(progress) == 2:  # noqa: PLR2004  (exactly the two keys)
        return f"{done}/{total}"
    return compact(progress)


def task_detail(outcome: TaskOutcome) -> str:
    """What to say of a task beside its status: its summary, error, block or skip reason."""
    status = outcome.status
    if status is TaskStatus.RUNNING:
        text = _progress(outcome.progress)
    elif status is TaskStatus.COMPLETED:
        text = "" if outcome.summary is None else compact(outcome.summary)
    elif status in {TaskStatus.WARNING, TaskStatus.FAILED} and outcome.error is not None:
        text = compact(f"{outcome.error.type}: {outcome.error.message}")
    elif status is TaskStatus.BLOCKED and outcome.blocked is not None:
        text = compact(outcome.blocked.reason)
    elif status is TaskStatus.SKIPPED:
        text = outcome.skip_reason or ""
    else:
        text = ""
    return printable(text)


def _status_text(status: str, *, repair: bool = False) -> Text:
    text = literal(status, style=STATUS_STYLES.get(status, ""))
    if repair:
        text.append(" (repair)")
    return text


def task_status(outcome: TaskOutcome) -> Text:
    """A task's status, styled, marked ``(repair)`` when its launch ran the repair variant."""
    return _status_text(
        outcome.status.value, repair=outcome.repair and outcome.status is not TaskStatus.PENDING
    )


def _duration(outcome: TaskOutcome) -> str:
    return "" if outcome.duration is None else f"{outcome.duration:.1f}s"


def run_table(outcomes: Iterable[TaskOutcome]) -> Table:
    """The run's tasks by step: status, time taken, and what they said."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in ("step", "task", "status", "time", "detail"):
        table.add_column(column, no_wrap=column in {"step", "status", "time"}, overflow="fold")
    step = None
    for outcome in outcomes:
        shown_step = "" if outcome.launch_order == step else str(outcome.launch_order)
        step = outcome.launch_order
        table.add_row(
            shown_step,
            literal(outcome.identifier),
            task_status(outcome),
            _duration(outcome),
            Text(task_detail(outcome)),
        )
    return table


def _details(details: JsonValue) -> list[Text]:
    if isinstance(details, JsonObject):
        return [literal(f"    {key}: {compact(value)}") for key, value in details.items()]
    if details is None:
        return []
    return [Text(f"    {compact(details)}")]


def run_summary(
    result: RunResult,
    job: Job,
    hints: Hints,
    *,
    repair_hint: str | None = None,
    repairable: bool = True,
    now: datetime | None = None,
) -> list[Text]:
    """What a person needs to know about how the run stands, and what to do next.

    Args:
        result: The run.
        job: The run's job.
        hints: Writes the suggested commands.
        repair_hint: The command that resumes the run with repair, if the
            caller knows a better one than ``jobledger resume ID --repair``.
        repairable: Whether the blocked tasks have repair variants (when
            ``False``, no repair is suggested).
        now: The time to judge the run's lease by; the clock's by default.
    """
    run_id = result.run_id
    lines: list[Text] = []
    status = result.status
    if status is RunStatus.COMPLETED:
        took = (job.updated_at - job.created_at).total_seconds()
        lines.append(
            _headline(f"Run {run_id} completed", status.value, f", {took:.1f}s after it started.")
        )
        if result.warnings:
            lines.append(Text(f"With {len(result.warnings)} warning(s):", style="yellow"))
            lines.extend(
                literal(f"  {warning.task}: {warning.type}: {warning.message}")
                for warning in result.warnings
            )
    elif status is RunStatus.FAILED:
        lines.append(_headline(f"Run {run_id} failed", status.value, "."))
        if result.failure is not None:
            lines.append(literal(f"  {result.failure}"))
        lines.extend(
            literal(f"  {outcome.identifier}: {task_detail(outcome)}")
            for outcome in result.outcomes.values()
            if outcome.status is TaskStatus.FAILED
        )
        lines.append(Text(f"Its log: {hints.command('history', run_id)}"))
    elif status is RunStatus.BLOCKED:
        lines.extend(_blocked_summary(result, hints, repair_hint if repairable else ""))
    elif status is RunStatus.CANCELED:
        lines.append(_headline(f"Run {run_id} was canceled", status.value, "."))
        not_run = [
            name
            for name, outcome in result.outcomes.items()
            if outcome.status in {TaskStatus.PENDING, TaskStatus.CANCELED, TaskStatus.RUNNING}
        ]
        if not_run:
            lines.append(literal(f"  not done: {', '.join(not_run)}"))
    else:
        lines.extend(_running_summary(result, hints, now or datetime.now(UTC)))
    return lines


def _headline(text: str, status: str, end: str) -> Text:
    line = literal(text, style=STATUS_STYLES.get(status, ""))
    line.append(printable(end))
    return line


def _blocked_summary(result: RunResult, hints: Hints, repair_hint: str | None) -> list[Text]:
    run_id = result.run_id
    point = result.breakpoint
    step = point.step if point is not None else "?"
    lines = [_headline(f"Run {run_id} is blocked", "blocked", f" at step {step}:")]
    for name in point.tasks if point is not None else ():
        blocked = result.outcomes[name].blocked
        lines.append(literal(f"  {name}: {blocked.reason if blocked else 'blocked'}"))
        if blocked is not None:
            lines.extend(_details(blocked.details))
    if repair_hint != "":
        resume_repair = repair_hint or hints.command("resume", run_id, "--repair", app=True)
        lines += [
            Text("Resume it with repair (the blocked task's repair variant runs in its place):"),
            Text(f"    {resume_repair}", style="bold"),
            Text("or run the blocked task again with a new force threshold N:"),
        ]
    else:
        lines.append(Text("Resume it, running the blocked task again with a force threshold N:"))
    lines += [
        Text(f"    {hints.command('resume', run_id, '--force', 'N', app=True)}"),
        Text(f"or cancel it: {hints.command('cancel', run_id)}"),
    ]
    return lines


def _running_summary(result: RunResult, hints: Hints, now: datetime) -> list[Text]:
    run_id = result.run_id
    state = result.state
    lease = state.lease if state is not None else None
    if state is not None and lease is not None and not lease.expired(now):
        extra = " (cancel requested)" if result.cancel_requested else ""
        drive = state.drive.number if state.drive is not None else "?"
        return [
            _headline(
                f"Run {run_id} is running",
                "running",
                f"{extra}; drive {drive} holds its lease until {when(lease.expires_at)}.",
            ),
            Text(f"Cancel it: {hints.command('cancel', run_id)}"),
        ]
    released = state.released if state is not None else None
    if released is not None:
        why = f"Run {run_id} was let go at {when(released.at)} ({released.reason})"
    elif lease is not None:
        why = f"Run {run_id} is running, but its runner's lease ran out at {when(lease.expires_at)}"
    else:
        why = f"Run {run_id} is running"
    lines = [_headline(why, "running", "; no runner drives it.")]
    if result.cancel_requested:
        lines.append(Text("Its cancel request stands: resuming it ends it canceled."))
    lines += [
        Text(f"Resume it: {hints.command('resume', run_id, app=True)}"),
        Text(f"or cancel it: {hints.command('cancel', run_id)}"),
    ]
    return lines


def run_lines(result: RunResult, now: datetime | None = None) -> list[tuple[str, Text]]:
    """A run's progress, drive and lease, as rows for ``show``."""
    done, total = result.progress
    rows = [("progress", Text(f"{done}/{total} tasks done"))]
    state = result.state
    if state is None:
        return rows
    counts = ", ".join(f"{count} {status}" for status, count in state.counts.items())
    if counts:
        rows[0][1].append(printable(f" ({counts})"))
    if state.step is not None:
        rows.append(("step", Text(f"{state.step} (launched last)")))
    if state.drive is not None:
        drive = state.drive
        repair = ", with repair" if drive.repair else ""
        rows.append(
            (
                "drive",
                literal(
                    f"{drive.number} ({drive.kind.value}{repair}), {drive.owner}, "
                    f"claimed {when(drive.claimed_at)}"
                ),
            )
        )
    if state.lease is not None:
        lease = state.lease
        expired = lease.expired(now or datetime.now(UTC))
        rows.append(
            (
                "lease",
                literal(
                    f"held by {lease.owner} until {when(lease.expires_at)}"
                    + (" (expired)" if expired else f" (renewed every {lease.seconds / 3:.3g}s)")
                ),
            )
        )
    elif state.released is not None:
        released = state.released
        rows.append(
            (
                "lease",
                literal(
                    f"released by drive {released.drive} at {when(released.at)}: {released.reason}"
                ),
            )
        )
    if state.force is not None:
        rows.append(("force", Text(str(state.force))))
    return rows


def _error_lines(error: TaskError, indent: str) -> list[Text]:
    lines = [literal(f"{indent}{error.type}: {error.message}")]
    lines.extend(literal(f"{indent}  {line}") for line in error.traceback.rstrip().splitlines())
    return lines


def error_lines(result: RunResult) -> list[Text]:
    """Each failed (or warned) task's error with its traceback, for ``show``."""
    lines: list[Text] = []
    for outcome in result.outcomes.values():
        if outcome.error is None or outcome.status not in {TaskStatus.FAILED, TaskStatus.WARNING}:
            continue
        line = literal(f"{outcome.identifier} ")
        line.append_text(task_status(outcome))
        line.append(":")
        lines.append(line)
        lines.extend(_error_lines(outcome.error, "  "))
    return lines


def launch_lines(launch: Launch) -> list[Text]:
    """What a launch job records, for ``show`` of a launch: its task, status and error."""
    record = launch.input
    repair = ", repair" if record.repair else ""
    lines = [
        literal(
            f"Launch {record.launch} of run {record.run}: task {record.task} (step {record.step}, "
            f"attempt {record.attempt}, drive {record.drive}{repair})"
        ),
    ]
    outcome = launch.outcome()
    status = Text("  ")
    status.append_text(task_status(outcome))
    detail = task_detail(outcome)
    if detail:
        status.append(f": {detail}")
    lines.append(status)
    if launch.state.error is not None and launch.state.error.traceback:
        lines.extend(_error_lines(launch.state.error, "  "))
    return lines


def job_view(job: Job, result: RunResult | None = None) -> RenderableType:
    """A job's fields, for ``show``; with ``result`` (the job's run), its progress and tasks."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    rows: list[tuple[str, str | Text]] = [
        ("id", job.id),
        ("service", job.service),
        ("entity", job.entity),
        ("type", job.type),
        ("display name", job.display_name),
        ("description", job.description),
        ("status", _status_text(job.status) + Text(f"  (phase {job.phase.value})")),
        ("version", str(job.version)),
        ("etag", job.etag),
        ("created", when(job.created_at)),
        ("started by", _actor_text(job.started_by)),
        ("updated", when(job.updated_at)),
    ]
    rows.append(("input", compact(job.input, 10_000)))
    if result is None:
        rows.append(("state", compact(job.state, 10_000)))
    else:
        rows.extend(run_lines(result))
    for label, value in rows:
        if value != "":
            table.add_row(label, value if isinstance(value, Text) else literal(value))
    if result is None:
        return table
    return Group(table, Text(""), run_table(result.outcomes.values()))


def _actor_text(actor: str | None) -> Text:
    """Who acted, or ``-`` when no one was named."""
    return Text("-", style="dim") if actor is None else literal(actor)


def updates_table(job: Job, updates: Sequence[JobUpdate]) -> Table:
    """A job's log, for ``history``: its start (row 0), then each update, with who acted."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in ("#", "kind", "status", "by", "at", "change"):
        table.add_column(column, no_wrap=column in {"#", "kind", "at"}, overflow="fold")
    table.add_row(
        "0",
        "started",
        _status_text(JobStatus.STARTED.value),
        _actor_text(job.started_by),
        when(job.created_at),
        Text(""),
    )
    for update in updates:
        change = "" if update.state_update is None else compact(update.state_update, 100)
        table.add_row(
            str(update.update_id),
            update.update_type.name.lower(),
            _status_text(update.status),
            _actor_text(update.actor),
            when(update.at),
            Text(change),
        )
    return table


@attrs.frozen
class LaunchRecord:
    """One launch group of a run and how each of its tasks ended in it.

    Attributes:
        number: The launch group's number.
        step: The step it launched.
        drive: The drive that launched it (1 for the invoke, then one per resume).
        launched_at: When.
        tasks: Each task launched: its identifier, the status it reached in
            this launch, whether it ran its repair variant, and the id of the
            launch's job.
    """

    number: int
    step: int
    drive: int
    launched_at: datetime
    tasks: tuple[tuple[str, str, bool, str], ...]


def launch_records(launches: Iterable[Launch]) -> tuple[LaunchRecord, ...]:
    """The run's launch groups with how each launch ended, from its launches (skips left out)."""
    groups: dict[int, LaunchRecord] = {}
    for launch in launches:
        record = launch.input
        if record.group is None:
            continue
        task = (record.task, launch.status.value, record.repair, launch.job_id)
        group = groups.get(record.group)
        groups[record.group] = (
            LaunchRecord(record.group, record.step, record.drive, launch.launched_at, (task,))
            if group is None
            else attrs.evolve(group, tasks=(*group.tasks, task))
        )
    return tuple(groups[number] for number in sorted(groups))


def launches_table(records: Sequence[LaunchRecord]) -> Table:
    """A run's launch groups, for ``history``."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in ("group", "step", "drive", "launched", "tasks"):
        table.add_column(column, no_wrap=column != "tasks", overflow="fold")  # numbers, a time
    for record in records:
        tasks = Text()
        for position, (name, status, repair, _) in enumerate(record.tasks):
            if position:
                tasks.append(", ")
            tasks.append(f"{printable(name)} ")
            tasks.append_text(_status_text(status))
            if repair:
                tasks.append(" (repair)")
        table.add_row(
            str(record.number), str(record.step), str(record.drive), when(record.launched_at), tasks
        )
    return table


def history_json(
    job: Job, updates: Sequence[JobUpdate], records: Sequence[LaunchRecord] | None
) -> dict[str, Any]:
    """``history --json``: the job's id, its updates on the wire, and a run's launch groups."""
    document: dict[str, Any] = {
        "JobId": job.id,
        "StartedBy": job.started_by,
        "Updates": [wire.encode(update) for update in updates],
    }
    if records is not None:
        document["LaunchGroups"] = [
            {
                "Number": record.number,
                "Step": record.step,
                "Drive": record.drive,
                "LaunchedAt": record.launched_at.isoformat(),
                "Tasks": [
                    {"Task": name, "Status": status, "Repair": repair, "LaunchId": launch_id}
                    for name, status, repair, launch_id in record.tasks
                ],
            }
            for record in records
        ]
    return document


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _outcome_json(outcome: TaskOutcome) -> dict[str, Any]:
    error, blocked = outcome.error, outcome.blocked
    return {
        "Task": outcome.identifier,
        "Type": outcome.type,
        "Step": outcome.launch_order,
        "Side": outcome.side,
        "Status": outcome.status.value,
        "Attempts": outcome.attempts,
        "Repair": outcome.repair,
        "LaunchGroup": outcome.launch_group,
        "LaunchedAt": _time(outcome.launched_at),
        "StartedAt": _time(outcome.started_at),
        "EndedAt": _time(outcome.ended_at),
        "Duration": outcome.duration,
        "Output": outcome.output,
        "Summary": thaw(outcome.summary),
        "Error": None
        if error is None
        else {"Type": error.type, "Message": error.message, "Traceback": error.traceback},
        "Blocked": None
        if blocked is None
        else {"Reason": blocked.reason, "Details": thaw(blocked.details)},
        "SkipReason": outcome.skip_reason,
        "Progress": None if outcome.progress is None else thaw(outcome.progress),
    }


def run_json(job: Job, result: RunResult) -> dict[str, Any]:
    """A run for ``--json``: its job in the wire format, its progress, and each task's outcome.

    ``Run`` decodes with :func:`jobledger.wire.decode_job`; ``Tasks`` lists
    the run's tasks in step order, each as its latest launch left it.
    """
    done, total = result.progress
    return {
        "Run": wire.encode(job),
        "Status": result.status.value,
        "Progress": {"Done": done, "Total": total},
        "Tasks": [_outcome_json(outcome) for outcome in result.outcomes.values()],
    }


def steps_table(definition: JobDefinition) -> Table:
    """The definition's steps and their tasks in launch order (Get-JobSteps)."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in ("step", "task", "type", "side", "parents", "notes"):
        table.add_column(column, no_wrap=column == "step", overflow="fold")
    for step in steps(definition):
        for position, task in enumerate(step.tasks):
            notes = [
                note
                for note, present in (
                    ("warning mode", task.warning_mode),
                    ("guarded", task.guarded),
                    ("has a repair variant", task.repair is not None),
                    (f"timeout {task.timeout:g}s" if task.timeout else "", bool(task.timeout)),
                )
                if present
            ]
            table.add_row(
                "" if position else str(step.launch_order),
                literal(task.identifier),
                literal(task.type),
                literal(task.side),
                literal(", ".join(task.parents)),
                ", ".join(notes),
            )
    return table


def steps_json(definition: JobDefinition) -> dict[str, Any]:
    """``steps --json``: the definition's steps and tasks."""
    return {
        "JobIdentifier": definition.identifier,
        "DisplayName": definition.display_name,
        "Steps": [
            {
                "LaunchOrder": step.launch_order,
                "Tasks": [
                    {
                        "Identifier": task.identifier,
                        "Type": task.type,
                        "Side": task.side,
                        "Parents": list(task.parents),
                        "WarningMode": task.warning_mode,
                        "Guarded": task.guarded,
                        "HasRepair": task.repair is not None,
                        "Timeout": task.timeout,
                    }
                    for task in step.tasks
                ],
            }
            for step in steps(definition)
        ],
    }


def jobs_table(page: JobPage) -> Table:
    """A page of jobs, for ``list``."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    # Ids are never cut: a narrow terminal wraps the other columns instead.
    longest = max((len(job.id) for job in page.jobs), default=2)
    table.add_column("id", no_wrap=True, min_width=longest)
    for column in ("service/entity/type", "status", "updated", "name"):
        table.add_column(column, overflow="fold")
    for job in page.jobs:
        table.add_row(
            literal(job.id),
            literal(f"{job.service}/{job.entity}/{job.type}"),
            _status_text(job.status),
            when(job.updated_at),
            literal(job.display_name),
        )
    return table


def page_json(page: JobPage) -> dict[str, Any]:
    """``list --json``: the jobs on the wire and the cursor of the next page."""
    return {"Jobs": [wire.encode(job) for job in page.jobs], "NextCursor": page.next_cursor}


_EVENT_WORDS = {
    "JobStarted": "started",
    "JobUpdated": "updated",
    "JobCompleted": "completed",
    "JobFailed": "failed",
    "JobCanceled": "canceled",
}


def event_line(entry: FeedEntry) -> Text:
    """One feed entry on one line, for ``watch``."""
    event = entry.event
    kind = _EVENT_WORDS.get(type(event).__name__, type(event).__name__)
    line = literal(f"#{entry.position}  {when(event.at)}  {kind:<9}  {event.job_id}  ")
    line.append(printable(f"{event.service}/{event.entity}/{event.type}  "))
    line.append_text(_status_text(event.status))
    line.append(f"  v{event.version}")
    if event.actor is not None:
        line.append(printable(f"  by {event.actor}"))
    patch = getattr(event, "state_update", None)
    if patch is not None:
        line.append(f"  {compact(patch, 100)}")
    return line


def event_json(entry: FeedEntry) -> dict[str, Any]:
    """``watch --json``: one line per event, its feed position and the event on the wire."""
    return {"Position": entry.position, "Event": wire.encode(entry.event)}
