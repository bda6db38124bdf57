"""Where the command line finds job definitions: ``--app module:attribute``.

The attribute may be a :class:`~jobledger.runner.JobDefinition`, a
:class:`~jobledger.runner.DefinitionBuilder`, a mapping or an iterable of
them, or a callable (taking no argument) that returns any of these.

The ``--app`` module is looked up on the import path first, then in the
working directory, so a module (or package) beside the command works. The
working directory is never put on the import path: no other module is ever
looked up there, so a ``psycopg.py`` (or any module named like one jobledger
imports) left in the folder you run the command in is never run.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from jobledger.cli._errors import AppError
from jobledger.runner import DefinitionBuilder, DefinitionError, JobDefinition

__all__ = ["APP_ENV", "DEFAULT_APP", "load_definitions"]

#: The definitions used when neither ``--app`` nor ``JOBLEDGER_APP`` names some.
DEFAULT_APP = "jobledger.demo:definitions"
#: The environment variable that names the definitions.
APP_ENV = "JOBLEDGER_APP"


def load_definitions(app: str) -> tuple[JobDefinition, ...]:
    """Import the job definitions ``app`` names: ``module:attribute``, or ``module``.

    The attribute defaults to ``definitions``.

    Raises:
        AppError: the module cannot be imported, has no such attribute, or the
            attribute holds something other than job definitions.

    >>> [definition.identifier for definition in load_definitions("jobledger.demo")]
    ['hr-nightly']
    """
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
    return _definitions(app, value)


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


def _a(noun: str) -> str:
    """``noun`` with its indefinite article, as one says it: a str, an int.

    >>> _a("int"), _a("str"), _a("NoneType")
    ('an int', 'a str', 'a NoneType')
    """
    return f"{'an' if noun[:1].lower() in set('aeio') else 'a'} {noun}"
