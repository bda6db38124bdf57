"""Where the command line finds job definitions, and how to run them: ``--app module:attribute``.

The attribute may be a :class:`~jobledger.runner.JobDefinition`, a
:class:`~jobledger.runner.DefinitionBuilder`, a mapping or an iterable of
them, or a callable (taking no argument) that returns any of these.

The ``--app`` module is looked up on the import path first, then in the
working directory, so a module (or package) beside the command works. The
working directory is never put on the import path: no other module is ever
looked up there, so a ``psycopg.py`` (or any module named like one jobledger
imports) left in the folder you run the command in is never run.

The module may also define how the command line runs its jobs (each optional):

* ``executors``: a mapping of side names to :class:`concurrent.futures.Executor`
  (a process pool for ``"agent"``, a dask.distributed client's executor, ...),
  or a callable taking no argument that returns one; executors a callable
  made are shut down when the command ends, the others are left as they are;
* ``limits``: the ledger's :class:`~jobledger.Limits` (a run's launches and
  their summaries are held to them);
* ``lease``: the seconds a runner's claim of a run lasts (renewed every third
  of it; :data:`LEASE_SECONDS` by default);
* ``poll_interval``: the seconds between the runner's reads of a run, to see
  cancel requests from other processes (:data:`POLL_SECONDS` by default).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Final

import attrs

from jobledger import Limits
from jobledger.cli._errors import AppError
from jobledger.runner import DefinitionBuilder, DefinitionError, JobDefinition

__all__ = [
    "APP_ENV",
    "DEFAULT_APP",
    "LEASE_SECONDS",
    "POLL_SECONDS",
    "App",
    "load_app",
    "load_definitions",
]

#: The definitions used when neither ``--app`` nor ``JOBLEDGER_APP`` names some.
DEFAULT_APP = "jobledger.demo:definitions"
#: The environment variable that names the definitions.
APP_ENV = "JOBLEDGER_APP"
#: Seconds the command line's claim of a run lasts unless ``--app``'s module sets ``lease``:
#: a run whose runner died is taken over by ``resume`` once its lease ran out.
LEASE_SECONDS: Final = 10.0
#: Seconds between the runner's reads of a run unless ``--app``'s module sets ``poll_interval``.
POLL_SECONDS: Final = 0.25

#: Makes the executors of a command (the module's ``executors``, when it is callable).
ExecutorFactory = Callable[[], Mapping[str, Executor]]


@attrs.frozen
class App:
    """What ``--app`` gives the command line: job definitions, and how to run them.

    Attributes:
        name: The ``--app`` value.
        definitions: The job definitions.
        executors: Executors by side, or a callable that makes them; ``None``
            for the runner's own thread pools.
        limits: The ledger's limits; ``None`` for the defaults.
        lease: Seconds a runner's claim of a run lasts.
        poll_interval: Seconds between a runner's reads of its run.
    """

    name: str
    definitions: tuple[JobDefinition, ...]
    executors: Mapping[str, Executor] | ExecutorFactory | None = None
    limits: Limits | None = None
    lease: float = LEASE_SECONDS
    poll_interval: float = POLL_SECONDS

    def make_executors(self) -> tuple[Mapping[str, Executor], bool]:
        """The executors by side, and whether they were made now (the caller shuts them down).

        Raises:
            AppError: the ``executors`` callable failed, or returned no mapping of executors.
        """
        if self.executors is None:
            return MappingProxyType({}), False
        if isinstance(self.executors, Mapping):
            return self.executors, False
        try:
            made = self.executors()
        except Exception as err:
            msg = f"calling its executors failed: {type(err).__name__}: {err}"
            raise AppError(self.name, msg) from err
        return _executors(self.name, made), True


def load_definitions(app: str) -> tuple[JobDefinition, ...]:
    """Import the job definitions ``app`` names: ``module:attribute``, or ``module``.

    The attribute defaults to ``definitions``.

    Raises:
        AppError: the module cannot be imported, has no such attribute, or the
            attribute holds something other than job definitions.

    >>> [definition.identifier for definition in load_definitions("jobledger.demo")]
    ['hr-nightly']
    """
    return load_app(app).definitions


def load_app(app: str) -> App:
    """Import what ``app`` names: its job definitions and its module's run settings.

    Raises:
        AppError: as :func:`load_definitions`, or a run setting of the module
            (``executors``, ``limits``, ``lease``, ``poll_interval``) is not
            what it should be.

    >>> load_app("jobledger.demo").lease == LEASE_SECONDS
    True
    """
    module, value = _import(app)
    executors = getattr(module, "executors", None)
    if executors is not None and not callable(executors):
        executors = _executors(app, executors)
    limits = getattr(module, "limits", None)
    if limits is not None and not isinstance(limits, Limits):
        raise AppError(app, f"its module's limits is {_a(type(limits).__name__)}, not a Limits")
    return App(
        name=app,
        definitions=_definitions(app, value),
        executors=executors,
        limits=limits,
        lease=_seconds(app, module, "lease", LEASE_SECONDS),
        poll_interval=_seconds(app, module, "poll_interval", POLL_SECONDS),
    )


def _import(app: str) -> tuple[ModuleType, object]:
    module_name, _, attribute = app.partition(":")
    attribute = attribute or "definitions"
    if not module_name or not all(part.isidentifier() for part in attribute.split(".")):
        raise AppError(app, "it is not of the form module:attribute")
    try:
        _import_from_working_directory(module_name.partition(".")[0])
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name is not None and module_name.startswith(err.name):
            raise AppError(app, f"no module named {err.name!r} can be imported here") from err
        raise AppError(app, f"importing {module_name!r} failed: {err}") from err
    except Exception as err:
        raise AppError(
            app, f"importing {module_name!r} failed: {type(err).__name__}: {err}"
        ) from err
    value: object = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise AppError(app, f"{module_name!r} has no attribute {attribute!r}") from None
    return module, value


def _import_from_working_directory(name: str) -> None:
    """Import the top-level module ``name`` from the working directory, if only found there."""
    if name in sys.modules or importlib.util.find_spec(name) is not None:
        return
    spec = importlib.machinery.PathFinder.find_spec(name, [str(Path.cwd())])
    if spec is None or spec.loader is None:
        return  # importing it raises ModuleNotFoundError, reported as such
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise


def _definitions(app: str, value: object) -> tuple[JobDefinition, ...]:
    if callable(value) and not isinstance(value, (JobDefinition, DefinitionBuilder)):
        try:
            value = value()
        except DefinitionError as err:
            raise AppError(app, _definition_problem(err)) from err
        except Exception as err:
            raise AppError(app, f"calling it failed: {type(err).__name__}: {err}") from err
    if isinstance(value, Mapping):
        value = list(value.values())
    items = [value] if isinstance(value, (JobDefinition, DefinitionBuilder)) else value
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise AppError(app, f"it is {_a(type(value).__name__)}, not job definitions")
    found = tuple(_definition(app, item) for item in items)
    if not found:
        raise AppError(app, "it holds no job definitions")
    return found


def _definition(app: str, item: object) -> JobDefinition:
    if isinstance(item, JobDefinition):
        return item
    if not isinstance(item, DefinitionBuilder):
        raise AppError(app, f"it holds {_a(type(item).__name__)}, not a job definition")
    try:
        return item.build()
    except DefinitionError as err:
        raise AppError(app, _definition_problem(err)) from err


def _definition_problem(error: DefinitionError) -> str:
    return "; ".join([f"job definition {error.identifier!r} is invalid", *error.problems])


def _executors(app: str, value: object) -> Mapping[str, Executor]:
    if not isinstance(value, Mapping) or not all(
        isinstance(side, str) and isinstance(executor, Executor) for side, executor in value.items()
    ):
        msg = (
            f"its module's executors is {_a(type(value).__name__)}, not a mapping of side names "
            "to concurrent.futures executors (or a callable returning one)"
        )
        raise AppError(app, msg)
    return MappingProxyType(dict(value))


def _seconds(app: str, module: ModuleType, name: str, default: float) -> float:
    value = getattr(module, name, None)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise AppError(
            app, f"its module's {name} must be a positive number of seconds, not {value!r}"
        )
    return float(value)


def _a(noun: str) -> str:
    """``noun`` with its indefinite article, as one says it: a str, an int.

    >>> _a("int"), _a("str"), _a("NoneType")
    ('an int', 'a str', 'a NoneType')
    """
    return f"{'an' if noun[:1].lower() in set('aeio') else 'a'} {noun}"
