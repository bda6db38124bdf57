"""``jobledger purge``: delete the jobs that ended long enough ago (legal holds excepted)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import click

from jobledger.cli._printable import literal
from jobledger.cli._render import console
from jobledger.cli._root import cli, debug_option, open_ledger, store_option

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_AGE = re.compile(r"([0-9]{1,9})([smhdw])")


def _age(_ctx: click.Context, _param: click.Parameter, value: str) -> timedelta:
    """An age such as ``30d``: a whole number and a unit (s, m, h, d or w)."""
    match = _AGE.fullmatch(value.strip())
    if match is None:
        reason = f"{value!r} is not an age like 30d, 12h or 90m (units s, m, h, d, w)"
        raise click.BadParameter(reason)
    number, unit = match.groups()
    return timedelta(**{_UNITS[unit]: int(number)})


@cli.command()
@click.option(
    "--older-than",
    "age",
    callback=_age,
    metavar="AGE",
    required=True,
    help="Purge the jobs that ended longer ago than this: 30d, 12h, 90m (s, m, h, d, w).",
)
@click.option("--service", default=None, help="Only jobs of this service.")
@click.option("--entity", default=None, help="Only jobs about this entity.")
@click.option("--type", "job_type", default=None, help="Only jobs of this type.")
@click.option("--dry-run", is_flag=True, help="Count the jobs that would go; delete nothing.")
@store_option
@debug_option
@click.pass_context
def purge(  # noqa: PLR0917  (one parameter per option)
    ctx: click.Context,
    age: timedelta,
    service: str | None,
    entity: str | None,
    job_type: str | None,
    dry_run: bool,  # noqa: FBT001
    store: str,
) -> None:
    """Delete the jobs that ended (completed, failed, canceled) longer ago than --older-than.

    Each job goes with its update log and request records; jobs on legal hold
    stay. The jobs' events stay in the event feed.
    """
    cut = datetime.now(UTC) - age
    count = open_ledger(ctx, store).purge(
        finished_before=cut, service=service, entity=entity, type=job_type, dry_run=dry_run
    )
    noun = "job" if count == 1 else "jobs"
    verb = "Would purge" if dry_run else "Purged"
    console().print(literal(f"{verb} {count} {noun} that ended before {cut.isoformat()}."))
