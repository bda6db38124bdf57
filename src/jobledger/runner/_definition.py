"""Job definitions: tasks, their launch orders and parents, validated when built.

Write a definition with :class:`DefinitionBuilder` (decorators over plain
functions) or build :class:`Task` and :class:`JobDefinition` values directly.
Either way a bad definition raises one :class:`~jobledger.runner.DefinitionError`
that lists every problem.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, overload

import attrs

from jobledger._core.errors import InvalidJobDataError
from jobledger._core.jsondoc import DEFAULT_LIMITS, check_name
from jobledger.runner._errors import DefinitionError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "AGENT",
    "SERVER",
    "DefinitionBuilder",
    "JobDefinition",
    "Task",
    "TaskFunction",
]

#: The side (named executor) tasks run on unless they say otherwise.
SERVER = "server"
#: The other side every runner knows.
AGENT = "agent"

#: What a task runs: a callable that takes the task's
#: :class:`~jobledger.runner.TaskContext`. It returns a
#: :class:`~jobledger.runner.TaskResult`, or anything else to say it produced output.
TaskFunction: TypeAlias = Callable[[Any], object]

F = TypeVar("F", bound=Callable[..., object])


def _parents(value: str | Iterable[str]) -> tuple[str, ...]:
    # Anything else is kept for validation to report, not refused here.
    if isinstance(value, str) or not isinstance(value, Iterable):
        return (value,)
    return tuple(value)


@attrs.frozen
class Task:
    """One task of a job definition.

    Attributes:
        identifier: Unique in its definition; names the task in runs and selections.
        function: What the task runs: a callable taking a
            :class:`~jobledger.runner.TaskContext`. For a process-pool side it
            must be picklable (a module-level function), and so must ``repair``.
        type: The task's kind (``export``, ``synchronize``, ``provision``, ...),
            for selection by type.
        launch_order: Tasks with the same launch order form a step; steps run
            in increasing launch order.
        parents: Identifiers of tasks (of earlier launch orders) that must
            complete, one of them with output, before this task runs.
        side: The name of the executor the task runs on (``"server"`` or
            ``"agent"`` by default; a runner may name more).
        warning_mode: Whether an error of this task is only a warning: the run
            goes on, and the task's children run as if it completed with output.
        guarded: Whether the task may block the run by raising
            :class:`~jobledger.runner.TaskBlocked`.
        repair: The variant to run in the task's place when a blocked run is
            resumed with ``repair=True`` (a validation or a forced action);
            only for guarded tasks.
        timeout: Seconds the task may run, counted from when it starts (not
            while it waits for a worker); past it the task fails (in warning
            mode, it is a warning). ``None`` for no limit.

    >>> def export(context):
    ...     return None
    >>> Task("export_hr", export, type="export", side="agent").launch_order
    1
    """

    identifier: str
    function: TaskFunction
    type: str = attrs.field(default="task", kw_only=True)
    launch_order: int = attrs.field(default=1, kw_only=True)
    parents: tuple[str, ...] = attrs.field(default=(), converter=_parents, kw_only=True)
    side: str = attrs.field(default=SERVER, kw_only=True)
    warning_mode: bool = attrs.field(default=False, kw_only=True)
    guarded: bool = attrs.field(default=False, kw_only=True)
    repair: TaskFunction | None = attrs.field(default=None, kw_only=True)
    timeout: float | None = attrs.field(default=None, kw_only=True)


def _name_problem(value: object, what: str) -> str | None:
    try:
        check_name(value, field=what, limits=DEFAULT_LIMITS)
    except InvalidJobDataError as err:
        shown = value if isinstance(value, str) else type(value).__name__
        return f"{what} {shown!r} {err.reason}"
    return None


def _field_problems(task: Task, name: str) -> Iterator[str]:
    # Fields are read as plain objects: a Task may be built with any values.
    function: object = task.function
    if not callable(function):
        yield f"task {name}: function must be callable, not {type(function).__name__}"
    for field in ("type", "side"):
        problem = _name_problem(getattr(task, field), f"task {name}: {field}")
        if problem:
            yield problem
    order: object = task.launch_order
    if not _is_order(order):
        yield f"task {name}: launch_order must be an integer, not {order!r}"
    for flag in ("warning_mode", "guarded"):
        if not isinstance(getattr(task, flag), bool):
            yield f"task {name}: {flag} must be True or False, not {getattr(task, flag)!r}"


def _task_problems(task: Task, name: str) -> Iterator[str]:
    yield from _field_problems(task, name)
    repair: object = task.repair
    if repair is not None:
        if not callable(repair):
            yield f"task {name}: repair must be callable, not {type(repair).__name__}"
        if task.guarded is not True:
            yield f"task {name}: has a repair variant but is not guarded (only guarded tasks block)"
    timeout: object = task.timeout
    if timeout is not None and (
        not isinstance(timeout, (int, float))
        or isinstance(timeout, bool)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        yield f"task {name}: timeout must be a positive number of seconds, not {timeout!r}"


def _is_order(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _cycles(graph: dict[str, tuple[str, ...]]) -> list[list[str]]:
    """Every cycle of parent links, each once, as the path that closes it."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    found: list[list[str]] = []
    for root, links in graph.items():
        if root in state:
            continue
        path: list[str] = [root]
        state[root] = 1
        stack: list[Iterator[str]] = [iter(links)]
        while stack:
            parent = next(stack[-1], None)
            if parent is None:
                state[path.pop()] = 2
                stack.pop()
                continue
            if state.get(parent) == 1:
                found.append([*path[path.index(parent) :], parent])
            elif parent not in state:
                state[parent] = 1
                path.append(parent)
                stack.append(iter(graph[parent]))
    return found


def _known_tasks(tasks: list[object], problems: list[str]) -> dict[str, Task]:
    """The tasks with valid, unique identifiers; the problems of all go to ``problems``."""
    known: dict[str, Task] = {}
    for position, task in enumerate(tasks, start=1):
        if not isinstance(task, Task):
            problems.append(f"task #{position} is a {type(task).__name__}, not a Task")
            continue
        problem = _name_problem(task.identifier, f"task #{position}: identifier")
        if problem:
            problems.append(problem)
            continue
        name = repr(task.identifier)
        if task.identifier in known:
            problems.append(f"task {name} is defined more than once")
            continue
        known[task.identifier] = task
        problems.extend(_task_problems(task, name))
    return known


def _parent_links(task: Task, known: dict[str, Task], problems: list[str]) -> tuple[str, ...]:
    """The task's valid parent links; the problems of all go to ``problems``."""
    name = repr(task.identifier)
    links: list[str] = []
    parents: tuple[object, ...] = task.parents
    for parent in parents:
        if not isinstance(parent, str):
            problems.append(f"task {name}: parent {parent!r} is not a task identifier")
        elif parent in links:
            problems.append(f"task {name}: parent {parent!r} is listed more than once")
        elif parent not in known:
            problems.append(f"task {name}: parent {parent!r} is not a task of this definition")
        else:
            links.append(parent)
            own, theirs = task.launch_order, known[parent].launch_order
            comparable = _is_order(own) and _is_order(theirs)
            if parent != task.identifier and comparable and theirs >= own:
                problems.append(
                    f"task {name}: parent {parent!r} has launch order {theirs}, "
                    f"which is not earlier than the task's {own}"
                )
    return tuple(links)


def definition_problems(
    identifier: object, tasks: Iterable[object], display_name: object
) -> list[str]:
    """Every problem of a definition with these fields, in the order found."""
    problems: list[str] = []
    problem = _name_problem(identifier, "identifier")
    if problem:
        problems.append(problem)
    if not isinstance(display_name, str):
        problems.append(f"display_name must be a string, not {type(display_name).__name__}")
    listed = list(tasks)
    if not listed:
        problems.append("a job definition needs at least one task")
    known = _known_tasks(listed, problems)
    graph = {name: _parent_links(task, known, problems) for name, task in known.items()}
    problems.extend(
        "parent links form a cycle: " + " -> ".join(repr(name) for name in cycle)
        for cycle in _cycles(graph)
    )
    return problems


def _task_tuple(tasks: Iterable[Task]) -> tuple[Task, ...]:
    return tuple(tasks)


def _validate(instance: JobDefinition) -> None:
    problems = definition_problems(instance.identifier, instance.tasks, instance.display_name)
    if problems:
        raise DefinitionError(instance.identifier, problems)


@attrs.frozen
class JobDefinition:
    """A job: its identifier and its tasks. Validated when built.

    The rules: the identifier and every task identifier, type and side are
    non-empty names; task identifiers are unique; parents are tasks of the
    definition with an earlier launch order, with no cycle; only guarded tasks
    have a repair variant; timeouts are positive.

    Attributes:
        identifier: The definition's identifier; every run of it is a job of
            this type in the ledger.
        tasks: The tasks, in definition order (which orders tasks within a step).
        display_name: A name for people; runs take it as their display name.

    Raises:
        DefinitionError: listing every problem found.

    >>> def work(context):
    ...     return None
    >>> JobDefinition("Nightly", [Task("a", work), Task("b", work, parents=["a", "c"])])
    Traceback (most recent call last):
    ...
    jobledger.runner._errors.DefinitionError: job definition 'Nightly' has 2 problems:
      - task 'b': parent 'a' has launch order 1, which is not earlier than the task's 1
      - task 'b': parent 'c' is not a task of this definition
    """

    identifier: str
    tasks: tuple[Task, ...] = attrs.field(converter=_task_tuple)
    display_name: str = attrs.field(default="", kw_only=True)

    def __attrs_post_init__(self) -> None:
        _validate(self)

    def task(self, identifier: str) -> Task:
        """The task with ``identifier``.

        Raises:
            KeyError: no task has this identifier.
        """
        for task in self.tasks:
            if task.identifier == identifier:
                return task
        raise KeyError(identifier)


class DefinitionBuilder:
    """Builds a :class:`JobDefinition` from decorated functions.

    The decorators return the function unchanged, so a module-level task
    function stays picklable and can run on a process pool.

    Args:
        identifier: The definition's identifier.
        display_name: A name for people.

    >>> nightly = DefinitionBuilder("Nightly", display_name="Nightly HR sync")
    >>> @nightly.task(type="export", side="agent")
    ... def export_hr(context):
    ...     return None
    >>> @nightly.task(launch_order=2, type="synchronize", parents="export_hr", guarded=True)
    ... def synchronize_hr(context):
    ...     return None
    >>> @nightly.repair("synchronize_hr")
    ... def validate_synchronization(context):
    ...     return None
    >>> definition = nightly.build()
    >>> [(task.identifier, task.launch_order) for task in definition.tasks]
    [('export_hr', 1), ('synchronize_hr', 2)]
    >>> definition.task("synchronize_hr").repair is validate_synchronization
    True
    """

    def __init__(self, identifier: str, *, display_name: str = "") -> None:
        self.identifier = identifier
        self.display_name = display_name
        self._tasks: list[Task] = []
        self._repairs: list[tuple[str, TaskFunction]] = []

    def add(self, task: Task) -> Task:
        """Add a :class:`Task` built elsewhere; return it."""
        self._tasks.append(task)
        return task

    @overload
    def task(self, function: F) -> F: ...

    @overload
    def task(
        self,
        *,
        identifier: str | None = None,
        type: str = "task",
        launch_order: int = 1,
        parents: str | Iterable[str] = (),
        side: str = SERVER,
        warning_mode: bool = False,
        guarded: bool = False,
        timeout: float | None = None,
    ) -> Callable[[F], F]: ...

    def task(
        self,
        function: F | None = None,
        *,
        identifier: str | None = None,
        type: str = "task",
        launch_order: int = 1,
        parents: str | Iterable[str] = (),
        side: str = SERVER,
        warning_mode: bool = False,
        guarded: bool = False,
        timeout: float | None = None,
    ) -> F | Callable[[F], F]:
        """Decorator: add the function as a task; see :class:`Task` for the fields.

        The identifier defaults to the function's name. Use it bare
        (``@builder.task``) or with fields (``@builder.task(launch_order=2)``).
        """

        def decorate(target: F) -> F:
            name = identifier if identifier is not None else getattr(target, "__name__", "")
            self._tasks.append(
                Task(
                    name,
                    target,
                    type=type,
                    launch_order=launch_order,
                    parents=parents,
                    side=side,
                    warning_mode=warning_mode,
                    guarded=guarded,
                    timeout=timeout,
                )
            )
            return target

        return decorate if function is None else decorate(function)

    def repair(self, task: str) -> Callable[[F], F]:
        """Decorator: make the function the repair variant of the guarded ``task``."""

        def decorate(target: F) -> F:
            self._repairs.append((task, target))
            return target

        return decorate

    def build(self) -> JobDefinition:
        """The definition, validated.

        Raises:
            DefinitionError: listing every problem, the builder's included
                (a repair for an unknown task, two repairs for one task).
        """
        problems: list[str] = []
        tasks = list(self._tasks)
        index = {task.identifier: position for position, task in enumerate(tasks)}
        repaired: set[str] = set()
        for target, function in self._repairs:
            if target not in index:
                name = getattr(function, "__name__", repr(function))
                problems.append(f"repair {name!r} is for {target!r}, which is not a task")
            elif target in repaired or tasks[index[target]].repair is not None:
                problems.append(f"task {target!r} has more than one repair variant")
            else:
                repaired.add(target)
                tasks[index[target]] = attrs.evolve(tasks[index[target]], repair=function)
        problems.extend(definition_problems(self.identifier, tasks, self.display_name))
        if problems:
            raise DefinitionError(self.identifier, problems)
        return JobDefinition(self.identifier, tasks, display_name=self.display_name)
