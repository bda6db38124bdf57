"""Who acts: the rule every command's ``actor`` follows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobledger._core.errors import InvalidJobDataError
from jobledger._core.jsondoc import check_name

if TYPE_CHECKING:
    from jobledger._core.jsondoc import Limits

__all__ = ["check_actor"]


def check_actor(value: str | None, limits: Limits) -> str | None:
    """A command's ``actor``, checked: who acts, or ``None`` for no one named.

    Raises:
        InvalidJobDataError: (field ``actor``) unless ``value`` is ``None`` or
            a name (see :class:`~jobledger.Limits`) with no leading or trailing
            blank, which would name someone that looks like another.
    """
    if value is None:
        return None
    actor = check_name(value, field="actor", limits=limits)
    if actor != actor.strip():
        raise InvalidJobDataError("actor", "", "must not have leading or trailing blanks")
    return actor
