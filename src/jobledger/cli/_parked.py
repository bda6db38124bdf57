"""``jobledger parked``: list and retry the events a durable subscriber parked."""

from __future__ import annotations

import click

from jobledger import wire
from jobledger.cli._printable import literal
from jobledger.cli._render import console, dumps
from jobledger.cli._root import cli, debug_option, json_option, open_ledger, store_option


@cli.group()
def parked() -> None:
    """List and retry the events a durable subscriber parked.

    A durable subscriber made with max_attempts parks an event its handler
    failed on that many times, and goes on with the next. The parked events
    stay in the store until retried: the subscriber then tries each once more.
    """


@parked.command("list")
@click.argument("name")
@store_option
@json_option
@debug_option
@click.pass_context
def list_parked(ctx: click.Context, name: str, store: str, as_json: bool) -> None:  # noqa: FBT001
    """List the events the durable subscriber NAME parked, by feed position."""
    found = open_ledger(ctx, store).parked_events(name)
    if as_json:
        click.echo(
            dumps(
                [
                    {
                        "Position": one.position,
                        "Attempts": one.attempts,
                        "Error": one.error,
                        "Retry": one.retry,
                        "Event": wire.encode(one.event),
                    }
                    for one in found
                ]
            )
        )
        return
    out = console()
    if not found:
        out.print(literal(f"No event is parked for {name}."))
        return
    for one in found:
        waiting = ", waiting for its retry" if one.retry else ""
        out.print(
            literal(
                f"{one.position}: {type(one.event).__name__} of job {one.event.job_id}, "
                f"{one.attempts} attempt{'' if one.attempts == 1 else 's'}{waiting}: {one.error}"
            )
        )


@parked.command("retry")
@click.argument("name")
@click.option("--position", type=int, default=None, help="Only the event at this feed position.")
@store_option
@debug_option
@click.pass_context
def retry_parked(ctx: click.Context, name: str, position: int | None, store: str) -> None:
    """Put back the events NAME parked (or the one at --position) for the subscriber to retry."""
    count = open_ledger(ctx, store).retry_parked(name, position=position)
    noun = "event" if count == 1 else "events"
    console().print(literal(f"{count} parked {noun} put back for {name} to retry."))
