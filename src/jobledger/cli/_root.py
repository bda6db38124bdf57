"""The ``jobledger`` command group, and what its commands share: options, store, runner, hints."""

from __future__ import annotations

import functools
import logging
import os
import shutil
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import attrs
import click
from click.core import ParameterSource
from rich.text import Text

from jobledger import Jobs
from jobledger.cli._app import APP_ENV, DEFAULT_APP, App
from jobledger.cli._errors import AppError, StoreUnreachableError, UnknownJobError, explain
from jobledger.cli._exit import EXIT_CODE_MEANINGS, ExitCode
from jobledger.cli._password import masked
from jobledger.cli._printable import literal, printable
from jobledger.cli._progress import LineView, LiveView, NoView, ProgressView
from jobledger.cli._render import Hints, console
from jobledger.cli._store import DEFAULT_STORE, STORE_ENV, StoreAddress, open_store
from jobledger.runner import DefinitionError, JobDefinition, Runner

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import Console

    from jobledger import Repository

__all__ = [
    "ACTOR_ENV",
    "API_CLIENT_ID_ENV",
    "API_SECRET_ENV",
    "API_URL_ENV",
    "FORCE",
    "ApiAccess",
    "Settings",
    "actor_of",
    "actor_option",
    "api_options",
    "app_option",
    "cli",
    "debug_option",
    "definition_of",
    "hints_of",
    "json_option",
    "main",
    "make_runner",
    "open_ledger",
    "open_repository",
    "open_service",
    "progress_view",
    "settings",
    "store_option",
]

#: The type of the threshold options: a non-negative integer.
FORCE = click.IntRange(min=0)

F = TypeVar("F", bound="Callable[..., Any]")


#: The order of the commands in the help and the reference.
_ORDER = ("invoke", "resume", "cancel", "steps", "show", "history", "list", "watch", "demo")


@attrs.define
class ApiAccess:
    """The jobs service to use in place of a store: ``--api-url`` and its client's credentials.

    Attributes:
        url: The service's base URL; ``None`` to use ``--store``.
        client_id: The OAuth2 client's id.
        secret: Its secret (never shown).
    """

    url: str | None = None
    client_id: str | None = None
    secret: str | None = attrs.field(default=None, repr=lambda secret: "***" if secret else "None")


#: The environment variables of the service options (the seed's Invoke-Job names them so).
API_URL_ENV = "JOBLEDGER_API_URL"
API_CLIENT_ID_ENV = "JOBLEDGER_API_CLIENT_ID"
API_SECRET_ENV = "JOBLEDGER_API_SECRET"  # noqa: S105  (the variable's name, not a secret)
#: The environment variable of ``--actor``.
ACTOR_ENV = "JOBLEDGER_ACTOR"


@attrs.define
class Settings:
    """What the root command and every command share.

    Attributes:
        debug: Whether errors show their traceback.
        store: The ``--store`` given before the command (``jobledger --store S list``).
        opened: The store the command opened, described for people (errors name it).
        hints: Writes the commands that errors suggest.
    """

    debug: bool = False
    store: str | None = attrs.field(
        default=None, repr=lambda store: repr(None if store is None else masked(store))
    )
    opened: str = ""
    hints: Hints = attrs.Factory(Hints)
    api: ApiAccess = attrs.Factory(ApiAccess)


def settings(ctx: click.Context) -> Settings:
    """The settings of the command line that ``ctx`` belongs to."""
    return ctx.find_root().ensure_object(Settings)


class Commands(click.Group):
    """Lists the commands in a useful order; turns errors into one line and an exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:  # noqa: ARG002  (click's signature)
        """The commands in the order people meet them: run, steer, read, then the demo."""

        def rank(name: str) -> tuple[int, str]:
            return (_ORDER.index(name) if name in _ORDER else len(_ORDER), name)

        return sorted(self.commands, key=rank)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Refuse an argument that is not text (bytes that are not UTF-8) before reading any."""
        for arg in args:
            try:
                arg.encode("utf-8")
            except UnicodeEncodeError:
                shown = arg.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
                msg = f"the argument '{shown}' is not valid UTF-8 text"
                raise click.UsageError(msg, ctx) from None
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:  # noqa: ANN401  (click's signature)
        """Run the command; report a jobledger error (or any other) in one line."""
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, BrokenPipeError):
            # Click reports its own errors, and exits quietly when the reader of the output
            # went away (``jobledger list | head``).
            raise
        except KeyboardInterrupt:
            # Ctrl-C outside a run (while the command starts, or after its run ended).
            console(stderr=True).print(Text("jobledger: interrupted", style="bold red"))
            ctx.exit(ExitCode.INTERRUPTED)
        except Exception as err:  # noqa: BLE001  (every error ends in one line and a code)
            shared = settings(ctx)
            code, message = explain(err, store=shared.opened, hints=shared.hints)
            errors = console(stderr=True)
            if shared.debug:
                trace = "".join(traceback.format_exception(err)).rstrip()
                errors.print(
                    Text("\n".join(printable(masked(line)) for line in trace.splitlines()))
                )
            line = Text("jobledger: ", style="bold red")
            line.append_text(literal(message))
            errors.print(line)
            ctx.exit(code)


def _set_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> None:  # noqa: FBT001  (click's callback)
    if value:
        settings(ctx).debug = True


def debug_option(function: F) -> F:
    """Decorator: the ``--debug`` option (tracebacks with errors)."""
    return click.option(
        "--debug",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_set_debug,
        help="On an error, show its traceback too.",
    )(function)


_STORE_HELP = (
    "Where the ledger is: an SQLite file (PATH or sqlite:///PATH; only invoke and demo create "
    "it) or a PostgreSQL database (postgresql://USER@HOST/DB?schema=NAME, or "
    "'host=HOST dbname=DB schema=NAME'; the schema is optional). May also be given before "
    "the command."
)


def _store_value(ctx: click.Context, _param: click.Parameter, value: str) -> str:
    # A --store given before the command counts unless one is given after it.
    before = settings(ctx).store
    if before is not None and ctx.get_parameter_source("store") is not ParameterSource.COMMANDLINE:
        return before
    return value


def _set_api(field: str) -> Callable[[click.Context, click.Parameter, str | None], None]:
    def keep(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        if value is not None:
            setattr(settings(ctx).api, field, value)

    return keep


def api_options(function: F) -> F:
    """Decorator: ``--api-url``, ``--api-client-id`` and ``--api-secret`` (in place of a store)."""
    for name, field, env, text in reversed(
        (
            (
                "--api-url",
                "url",
                API_URL_ENV,
                "Use the jobs service at this URL (jobledger serve) in place of --store.",
            ),
            ("--api-client-id", "client_id", API_CLIENT_ID_ENV, "The service client's id."),
            ("--api-secret", "secret", API_SECRET_ENV, "The service client's secret."),
        )
    ):
        function = click.option(
            name,
            envvar=env,
            show_envvar=True,
            expose_value=False,
            callback=_set_api(field),
            metavar="URL" if field == "url" else "TEXT",
            help=text,
        )(function)
    return function


def actor_option(function: F) -> F:
    """Decorator: the ``--actor`` option (``JOBLEDGER_ACTOR``), who the command's changes name."""
    return click.option(
        "--actor",
        envvar=ACTOR_ENV,
        show_envvar=True,
        metavar="NAME",
        help=(
            "Who is acting (a person or a service): recorded as the actor of the changes "
            "this command makes; none by default. Through --api-url the service records its "
            "client as the actor, and refuses any other NAME; JOBLEDGER_ACTOR is then ignored "
            "and the client's id named (a run's drive records it too)."
        ),
    )(function)


def actor_of(ctx: click.Context, actor: str | None) -> str | None:
    """The ``--actor`` to send: with ``--api-url``, the client's id unless given as ``--actor``.

    The service records its client as the actor and refuses any other, so an
    actor from the environment (``JOBLEDGER_ACTOR``, set for local stores, say)
    would make every command through the service fail: it is ignored there, and
    the client's id named instead, so that what the command records itself (a
    run's drive) names who the service records. One given as ``--actor`` is sent.
    """
    api = settings(ctx).api
    if api.url is None:
        return actor
    from_environment = ctx.get_parameter_source("actor") is ParameterSource.ENVIRONMENT
    return api.client_id if actor is None or from_environment else actor


def store_option(function: F) -> F:
    """Decorator: the ``--store`` option (``JOBLEDGER_STORE``) and the service options."""
    function = api_options(function)
    return click.option(
        "--store",
        envvar=STORE_ENV,
        default=DEFAULT_STORE,
        show_default=True,
        show_envvar=True,
        metavar="PATH|URL",
        callback=_store_value,
        help=_STORE_HELP,
    )(function)


def _set_root_store(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        settings(ctx).store = value


def app_option(function: F) -> F:
    """Decorator: the ``--app`` option (``JOBLEDGER_APP``)."""
    return click.option(
        "--app",
        envvar=APP_ENV,
        default=DEFAULT_APP,
        show_default=True,
        show_envvar=True,
        metavar="MODULE:ATTRIBUTE",
        help=(
            "The job definitions: an attribute of a module (found on the import path, else in "
            "the working directory) holding a JobDefinition, a mapping or iterable of them, or a "
            "callable returning them. The module may also set executors, limits, lease and "
            "poll_interval for the runs (see the reference). The default is the bundled demo."
        ),
    )(function)


def json_option(function: F) -> F:
    """Decorator: the ``--json`` flag."""
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print JSON (the wire format of jobledger.wire) instead of text.",
    )(function)


def _exit_code_listing() -> str:
    lines = "\n".join(f"  {int(code):>3}  {EXIT_CODE_MEANINGS[code]}" for code in ExitCode)
    return f"\b\nExit codes:\n{lines}"


@click.group(cls=Commands, epilog=_exit_code_listing())
@click.version_option(package_name="jobledger", prog_name="jobledger")
@debug_option
@api_options
@click.option(
    "--store",
    metavar="PATH|URL",
    expose_value=False,
    callback=_set_root_store,
    help="The store, for the command that follows (as its own --store says).",
)
def cli() -> None:
    """Run, watch, cancel and resume jobs recorded in a jobledger ledger.

    Start with `jobledger demo`: it runs the bundled hr-nightly job, shows it
    block at its synchronization, and tells you the command that resumes it.

    Job definitions come from --app MODULE:ATTRIBUTE (or JOBLEDGER_APP); the
    default, jobledger.demo:definitions, holds the demo's hr-nightly job. The
    ledger lives in --store (or JOBLEDGER_STORE): an SQLite file (by default
    jobledger.db in the working directory) or a PostgreSQL database. Every
    process that opens the same store sees the same jobs, so a run invoked in
    one terminal can be watched, canceled and resumed from another.
    """


def hints_of(ctx: click.Context, *, demo: bool = False) -> Hints:
    """The --store and --app to repeat in suggested commands: those given on the command line."""

    def given(name: str) -> str | None:
        if name in ctx.params and ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE:
            value: str = ctx.params[name]
            return value
        return None

    app = given("app")
    if demo and os.environ.get(APP_ENV, DEFAULT_APP) != DEFAULT_APP:
        app = DEFAULT_APP
    api_url = settings(ctx).api.url
    if api_url is not None and os.environ.get(API_URL_ENV) == api_url:
        api_url = None  # from the environment: the suggested command finds it there too
    return Hints(
        store=given("store") or settings(ctx).store,
        app=app,
        program=program_name(),
        api_url=api_url,
    )


def program_name() -> str:
    """How to call this command line again: ``jobledger`` when that is on the PATH, else as called.

    A command run as ``.venv/bin/jobledger`` (the README's) suggests commands
    that start with ``.venv/bin/jobledger``, unless ``jobledger`` on the PATH
    is the very same program.
    """
    called = sys.argv[0] if sys.argv else ""
    if Path(called).name not in {"jobledger", "jobledger.exe"}:
        return "jobledger"
    found = shutil.which("jobledger")
    try:
        same = found is not None and Path(found).samefile(called)
    except OSError:
        same = False
    return "jobledger" if same else called


def open_repository(ctx: click.Context, store: str, *, create: bool = False) -> Repository:
    """Open the repository ``store`` names, to be closed when the command ends.

    Args:
        ctx: The command's context.
        store: The ``--store`` value.
        create: Whether a missing SQLite file is made (only by the commands
            that start runs); otherwise a missing store is an error.

    Raises:
        StoreSpecError: ``store`` is not a store address.
        StoreUnreachableError: the store cannot be opened, or is missing and
            ``create`` is false.
    """
    shared = settings(ctx)
    if not shared.debug:
        # The PostgreSQL pool logs every failed connection attempt; the command says it once.
        quiet = logging.getLogger("psycopg")
        if not quiet.handlers:
            quiet.addHandler(logging.NullHandler())
    address = StoreAddress.parse(store)
    shared.opened, shared.hints = address.describe(), hints_of(ctx)
    repository = open_store(address, create=create)
    close = getattr(repository, "close", None)
    if callable(close):
        ctx.call_on_close(close)
    return repository


def open_ledger(
    ctx: click.Context, store: str, app: App | None = None, *, create: bool = False
) -> Jobs:
    """The ledger in ``store``, held to the ``--app`` module's limits if it sets some.

    ``create`` is as for :func:`open_repository`: only the commands that start
    runs make a missing store.

    Raises:
        StoreSpecError: ``store`` is not a store address.
        StoreUnreachableError: the store cannot be opened, or is missing and
            ``create`` is false.
    """
    if settings(ctx).api.url is not None:
        return open_service(ctx)
    repository = open_repository(ctx, store, create=create)
    if app is None or app.limits is None:
        return Jobs(repository=repository)
    return Jobs(repository=repository, limits=app.limits)


def open_service(ctx: click.Context) -> Jobs:
    """A client of the jobs service ``--api-url`` names, closed when the command ends.

    :class:`jobledger.http.JobsClient` offers the methods of
    :class:`~jobledger.Jobs` the commands call (get, find, updates, handle,
    handle_all, subscribe), with the same errors: the commands and the runner
    use it as they use a local ledger.

    Raises:
        click.UsageError: the client id or the secret is missing.
        StoreUnreachableError: the ``server`` extra is not installed.
    """
    api = settings(ctx).api
    missing = [
        name
        for name, value in (("--api-client-id", api.client_id), ("--api-secret", api.secret))
        if not value
    ]
    if missing:
        msg = (
            f"--api-url needs {' and '.join(missing)} too "
            f"(or {API_CLIENT_ID_ENV} and {API_SECRET_ENV})"
        )
        raise click.UsageError(msg, ctx)
    try:
        from jobledger.http import JobsClient  # noqa: PLC0415  (the server extra, only here)
    except ImportError as err:
        raise StoreUnreachableError(
            f"the jobs service at {api.url}",
            'the service client needs the server extra: pip install "jobledger[server]"',
        ) from err
    assert api.url is not None  # noqa: S101  (checked by the caller)
    shared = settings(ctx)
    shared.opened, shared.hints = f"the jobs service at {api.url}", hints_of(ctx)
    client = JobsClient(api.url, api.client_id or "", api.secret or "")
    ctx.call_on_close(client.close)
    # The client has the methods of Jobs that the commands use, and raises the same errors.
    return cast("Jobs", client)


def make_runner(ctx: click.Context, app: App, jobs: Jobs) -> Runner:
    """The command line's runner: the ``--app`` module's executors and lease, if it sets them.

    Executors the module's ``executors`` callable makes are shut down when the
    command ends.

    Raises:
        AppError: the definitions cannot run together (two share an identifier,
            a task's side has no executor, ...), or the executors cannot be made.
    """
    executors, made = app.make_executors()
    if made:
        for executor in executors.values():
            ctx.call_on_close(functools.partial(executor.shutdown, wait=False, cancel_futures=True))
    try:
        return Runner(
            jobs,
            app.definitions,
            executors=executors,
            lease=app.lease,
            poll_interval=app.poll_interval,
        )
    except DefinitionError as err:
        raise AppError(app.name, "; ".join(err.problems)) from err


def progress_view(out: Console, *, as_json: bool) -> ProgressView:
    """How to show a run: live on a terminal, in lines elsewhere, not at all with --json."""
    if as_json:
        return NoView()
    if out.is_terminal:
        return LiveView(out)
    return LineView(out)


def definition_of(app: App, job: str, *, run_id: str = "") -> JobDefinition:
    """The definition of ``job`` among the --app's definitions.

    Raises:
        UnknownJobError: there is none (for the run ``run_id``, if given).
    """
    for definition in app.definitions:
        if definition.identifier == job:
            return definition
    known = [definition.identifier for definition in app.definitions]
    raise UnknownJobError(job, app.name, known, run_id=run_id)


def main() -> None:
    """Run the ``jobledger`` command line with ``sys.argv``; exit with its code."""
    cli.main(args=sys.argv[1:], prog_name="jobledger")
