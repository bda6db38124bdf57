"""The arguments every backend's feed, log and checkpoint methods accept, checked once.

Every repository calls these before it touches storage, so memory, SQLite and
PostgreSQL refuse (or answer) the same bad input the same way.
"""

from __future__ import annotations

from jobledger._core.errors import InvalidJobDataError
from jobledger._core.jsondoc import Limits, check_text

__all__ = ["MAX_POSITION", "check_position", "check_subscriber_name", "window"]

#: The largest feed position, update id or checkpoint any backend stores (a signed 64-bit integer).
MAX_POSITION = 2**63 - 1


# Subscriber names are checked as text (line breaks allowed) of at most 200 characters.
_NAME_LIMITS = Limits(max_text_length=200)


def _integer(value: object, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidJobDataError(field, "", f"must be an integer, not {type(value).__name__}")
    return int(value)


def check_subscriber_name(name: object) -> str:
    """Check a durable subscriber's (and so its checkpoint's) name.

    Raises:
        InvalidJobDataError: naming ``name``, unless it is a non-empty string of
            at most 200 characters with no NUL and no lone surrogate (any other
            character, line breaks included, names its own checkpoint).
    """
    text = check_text(name, field="name", limits=_NAME_LIMITS)
    if not text:
        raise InvalidJobDataError("name", "", "must not be empty")
    return text


def check_position(position: object) -> int:
    """Check a checkpoint position: an integer from 0 to :data:`MAX_POSITION`.

    Raises:
        InvalidJobDataError: naming ``position``.
    """
    value = _integer(position, "position")
    if not 0 <= value <= MAX_POSITION:
        raise InvalidJobDataError("position", "", f"must be from 0 to 2**63-1, not {value}")
    return value


def window(after: object, limit: object) -> tuple[int, int]:
    """``after`` and ``limit`` of a read, as every backend reads them.

    A negative ``after`` reads from the start, one past :data:`MAX_POSITION`
    reads nothing (no position is that large); a negative ``limit`` reads
    nothing, and one past :data:`MAX_POSITION` is as good as no limit.

    >>> window(-5, 2**70)
    (0, 9223372036854775807)

    Raises:
        InvalidJobDataError: naming ``after`` or ``limit``, when one is not an integer.
    """
    start = min(max(_integer(after, "after"), 0), MAX_POSITION)
    count = min(max(_integer(limit, "limit"), 0), MAX_POSITION)
    return start, count
