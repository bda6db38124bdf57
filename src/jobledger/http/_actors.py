"""The service's rule for who acts: a client acts as itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from jobledger import InvalidJobDataError
from jobledger._core.actors import check_actor
from jobledger.http._errors import ActorMismatchError

if TYPE_CHECKING:
    from jobledger import Command, Limits

__all__ = ["as_client"]


def as_client(command: Command, client_id: str, limits: Limits) -> Command:
    """``command`` with the client ``client_id`` as its actor.

    Raises:
        InvalidJobDataError: the command's ``Actor`` is not a valid actor, or
            ``client_id`` is longer than the ledger's names may be (so it
            cannot be recorded as the actor; the message names the client).
        ActorMismatchError: the command names another actor.
    """
    if command.actor is not None:
        check_actor(command.actor, limits)
        if command.actor != client_id:
            raise ActorMismatchError(client_id, command.actor)
    if len(client_id) > limits.max_name_length:
        raise InvalidJobDataError(
            "actor",
            "",
            f"the client id {client_id!r} cannot be recorded as the actor: it is longer than "
            f"the ledger's {limits.max_name_length} characters (Limits.max_name_length); "
            "give the client a shorter id",
        )
    return attrs.evolve(command, actor=client_id)
