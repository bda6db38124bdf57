"""``jobledger serve`` and ``jobledger clients``: the jobs service over HTTP, and who may use it.

Both need the ``server`` extra (``pip install "jobledger[server]"``), imported
when a command runs so that the rest of the command line works without it.
"""

from __future__ import annotations

import importlib
import json
from typing import TYPE_CHECKING, Any

import click

from jobledger import Jobs
from jobledger.cli._app import APP_ENV, load_app
from jobledger.cli._printable import printable
from jobledger.cli._render import console
from jobledger.cli._root import (
    cli,
    debug_option,
    json_option,
    make_runner,
    open_repository,
    store_option,
)

if TYPE_CHECKING:
    from types import ModuleType

    from jobledger import Repository

__all__ = ["clients", "serve"]


def _http() -> ModuleType:
    """:mod:`jobledger.http`, or a message saying which extra to install."""
    try:
        return importlib.import_module("jobledger.http")
    except ImportError as err:
        msg = f'the jobs service needs the server extra ({err}): pip install "jobledger[server]"'
        raise click.ClickException(msg) from err


def _client_store(ctx: click.Context, repository: Repository) -> Any:  # noqa: ANN401  (a jobledger.http.ClientStore)
    store = _http().client_store_beside(repository)
    ctx.call_on_close(store.close)
    return store


@cli.command()
@store_option
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="The port."
)
@click.option(
    "--token-lifetime",
    default=3600,
    show_default=True,
    type=click.IntRange(min=1),
    help="Seconds an access token is valid.",
)
@click.option(
    "--token-recheck-seconds",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds a verified token's client is trusted before it is read again: a removed "
    "or rotated client's tokens stop working within this time (0: at once, one read a request).",
)
@click.option(
    "--keepalive-seconds",
    default=15.0,
    show_default=True,
    type=click.FloatRange(min=0.01),
    help="Seconds of a quiet event feed before a keep-alive comment.",
)
@click.option(
    "--stream-seconds",
    default=300.0,
    show_default=True,
    type=click.FloatRange(min=0.01),
    help="Seconds one event feed response lasts before clients reconnect with Last-Event-ID.",
)
@click.option(
    "--ssl-certfile",
    type=click.Path(exists=True, dir_okay=False),
    help="Serve HTTPS with this certificate.",
)
@click.option(
    "--ssl-keyfile",
    type=click.Path(exists=True, dir_okay=False),
    help="The certificate's private key.",
)
@click.option(
    "--forwarded-allow-ips",
    default=None,
    help="Proxies (comma-separated IPs, or *) whose X-Forwarded-* headers are trusted.",
)
@click.option(
    "--access-log/--no-access-log",
    default=False,
    show_default=True,
    help="Log a line for every request (about a tenth of the server's time per command).",
)
@click.option(
    "--app",
    envvar=APP_ENV,
    default=None,
    show_envvar=True,
    metavar="MODULE:ATTRIBUTE",
    help=(
        "The job definitions, as for `jobledger invoke`: with them the dashboard offers to "
        "resume blocked runs, and the server drives the resumed runs. Without it, it does not."
    ),
)
@click.option(
    "--secure-cookie",
    is_flag=True,
    help=(
        "Send the dashboard's session cookie over HTTPS only: for a proxy that terminates TLS "
        "(on by itself with --ssl-certfile)."
    ),
)
@click.option(
    "--session-seconds",
    default=8 * 3600,
    show_default=True,
    type=click.IntRange(min=1),
    help="Seconds a dashboard session lasts after its sign-in.",
)
@debug_option
@click.pass_context
def serve(  # noqa: PLR0917  (click passes one parameter per option)
    ctx: click.Context,
    store: str,
    host: str,
    port: int,
    token_lifetime: int,
    token_recheck_seconds: float,
    keepalive_seconds: float,
    stream_seconds: float,
    ssl_certfile: str | None,
    ssl_keyfile: str | None,
    forwarded_allow_ips: str | None,
    access_log: bool,  # noqa: FBT001  (a click flag)
    app: str | None,
    session_seconds: int,
    *,
    secure_cookie: bool,
) -> None:
    """Serve the ledger over HTTP: the jobs service and its dashboard, until interrupted.

    Clients authenticate with OAuth2 client credentials (POST /token); add
    them with `jobledger clients add`. People sign in to the dashboard (/,
    which leads to /dashboard/) with a client's id and secret. It listens on
    127.0.0.1 unless --host says otherwise; serve HTTPS with
    --ssl-certfile/--ssl-keyfile, or put it behind a reverse proxy. The routes
    are in GET /openapi.json.
    """
    http = _http()
    import uvicorn  # noqa: PLC0415  (part of the server extra, checked just above)

    # A service is set up on a new store as the commands that start runs are: it makes it.
    repository = open_repository(ctx, store, create=True)
    loaded = load_app(app) if app is not None else None
    limits = loaded.limits if loaded is not None else None
    jobs = Jobs(repository) if limits is None else Jobs(repository, limits=limits)
    runner = make_runner(ctx, loaded, jobs) if loaded is not None else None
    if runner is not None:
        ctx.call_on_close(runner.close)
    served = http.create_app(
        jobs,
        _client_store(ctx, repository),
        token_lifetime=token_lifetime,
        token_recheck_seconds=token_recheck_seconds,
        keepalive_seconds=keepalive_seconds,
        stream_seconds=stream_seconds,
        runner=runner,
        session_seconds=session_seconds,
        https_only=secure_cookie or ssl_certfile is not None,
    )
    uvicorn.run(
        served,
        host=host,
        port=port,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips,
        timeout_graceful_shutdown=5,
        log_level="info",
        access_log=access_log,
    )


@cli.group()
def clients() -> None:
    """Add, list, remove and rotate the clients of the jobs service (`jobledger serve`).

    A client has an id, a secret (shown once; only a slow salted hash is
    kept) and permissions ACTION[:SERVICE]: actions read, start, update,
    complete, fail, cancel, run and admin; a service limits the action to
    that service's jobs; * stands for every action or service.
    """


_ALLOW_HELP = (
    "A permission ACTION[:SERVICE] (repeat for several): read, start, update, complete, fail, "
    "cancel, run, admin, or * for all; e.g. start:hr, read:*, '*'."
)


@clients.command("add")
@click.argument("client_id")
@click.option(
    "--allow", "allow", multiple=True, required=True, metavar="ACTION[:SERVICE]", help=_ALLOW_HELP
)
@store_option
@debug_option
@click.pass_context
def add_client(ctx: click.Context, client_id: str, allow: tuple[str, ...], store: str) -> None:
    """Add a client; print its secret alone on the last line (shown this once)."""
    permissions = _http().Permissions.parse(allow)
    repository = open_repository(ctx, store, create=True)  # the first client sets a store up
    client, secret = _client_store(ctx, repository).add(client_id, permissions)
    out = console()
    allowed = printable(str(client.permissions))
    out.print(f"added client {printable(client.client_id)} allowed {allowed}; its secret:")
    click.echo(secret)


@clients.command("list")
@store_option
@json_option
@debug_option
@click.pass_context
def list_clients(ctx: click.Context, store: str, *, as_json: bool) -> None:
    """List the clients and their permissions (never their secrets)."""
    found = _client_store(ctx, open_repository(ctx, store)).clients()
    if as_json:
        rows = [
            {
                "ClientId": client.client_id,
                "Permissions": [str(grant) for grant in client.permissions.grants],
                "CreatedAt": client.created_at.isoformat(),
            }
            for client in found
        ]
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    out = console()
    if not found:
        out.print("no clients; add one with `jobledger clients add CLIENT_ID --allow ACTION`")
    for client in found:
        out.print(f"{printable(client.client_id)}  {printable(str(client.permissions))}")


@clients.command("remove")
@click.argument("client_id")
@store_option
@debug_option
@click.pass_context
def remove_client(ctx: click.Context, client_id: str, store: str) -> None:
    """Remove a client: its tokens stop working at once."""
    _client_store(ctx, open_repository(ctx, store)).remove(client_id)
    console().print(f"removed client {printable(client_id)}")


@clients.command("rotate")
@click.argument("client_id")
@store_option
@debug_option
@click.pass_context
def rotate_client(ctx: click.Context, client_id: str, store: str) -> None:
    """Give a client a new secret, printed alone on the last line; its tokens stop working."""
    client, secret = _client_store(ctx, open_repository(ctx, store)).rotate(client_id)
    console().print(f"client {printable(client.client_id)} has a new secret:")
    click.echo(secret)
