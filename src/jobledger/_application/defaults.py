"""The default clock and id factory the facade injects into the core."""

from __future__ import annotations

import itertools
import os
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["new_id", "new_tag", "utc_now"]


def utc_now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


_COUNTER_MAX = 0xFFF  # rand_a is 12 bits
_RANDOM_BATCH = 4096  # random bytes read from the OS at a time


# The variant field's hex digit (0b10xx) for each random hex digit.
_VARIANT_DIGIT = {digit: "89ab"[int(digit, 16) & 0b11] for digit in "0123456789abcdef"}
# Random hex digits one id takes: 3 to seed the counter, 1 for the variant
# digit's two random bits, then 15 (60 bits) for the rest of rand_b.
_DIGITS_PER_ID = 19


class _Uuid7Source:
    """UUIDv7 strings (RFC 9562) that sort by creation time.

    Within one millisecond, ids from this process keep increasing: the 12-bit
    ``rand_a`` field counts up from a random start (RFC 9562, method 1); the
    other 62 bits are random. Random bytes are read from the OS 4 KiB at a
    time, as hex digits, and a forked child discards its parent's, so no two
    processes ever share them. The text of the timestamp is made once per
    millisecond, and the rest is sliced from the hex digits: formatting numbers
    was most of an id's cost.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._millis = -1
        self._counter = 0
        self._prefix = ""
        self._digits = ""
        self._offset = 0

    def _advance(self, millis: int, digits: str) -> int:
        """Move to ``millis``; return the counter's random start there."""
        self._millis = millis
        self._prefix = f"{millis >> 16 & 0xFFFFFFFF:08x}-{millis & 0xFFFF:04x}-7"
        return int(digits[:3], 16) & 0x7FF  # 11 bits, so the counter has room to count

    def __call__(self) -> str:
        millis = time.time_ns() // 1_000_000
        with self._lock:
            offset = self._offset
            if offset + _DIGITS_PER_ID > len(self._digits):
                self._digits = os.urandom(_RANDOM_BATCH).hex()
                offset = 0
            self._offset = offset + _DIGITS_PER_ID
            digits = self._digits[offset : offset + _DIGITS_PER_ID]
            if millis > self._millis:
                counter = self._advance(millis, digits)
            else:
                counter = self._counter + 1
                if counter > _COUNTER_MAX:
                    # The counter ran out within this millisecond: borrow the next.
                    counter = self._advance(self._millis + 1, digits)
            self._counter = counter
            prefix = self._prefix
        return f"{prefix}{counter:03x}-{_VARIANT_DIGIT[digits[3]]}{digits[4:7]}-{digits[7:]}"


_source = _Uuid7Source()
os.register_at_fork(after_in_child=_source._reset)  # noqa: SLF001  (this module's own)


def new_id() -> str:
    """A new unique id that sorts by creation time: a UUID version 7 (RFC 9562).

    >>> import uuid
    >>> uuid.UUID(new_id()).version
    7
    """
    return _source()


def _tag_source() -> Callable[[], str]:
    """Unique tokens for ETags and event ids: this process's random prefix and a counter.

    Nothing orders ETags or event ids, so they need not be UUIDv7s, only never
    used twice: the prefix is 64 random bits drawn when the process starts (and
    again in a forked child), so no two processes share one, restarts included,
    short of a 1 in 2**64 chance per pair; the counter never repeats within a
    process. A token costs a sixth of a UUIDv7.

    The token is made by C code alone (``itertools.count``'s ``next`` and a
    ``%`` format under one call), which is atomic under the GIL: no lock is
    needed, and no two threads get one count.
    """
    template = os.urandom(8).hex() + "-%x"
    return map(template.__mod__, itertools.count(1)).__next__


_next_tag = _tag_source()


def _reset_tags() -> None:
    global _next_tag  # noqa: PLW0603  (the process's one source, drawn again in a forked child)
    _next_tag = _tag_source()


os.register_at_fork(after_in_child=_reset_tags)


def new_tag() -> str:
    """A new token never made before, by any process: the default ETags and event ids.

    Its text is 16 hex digits drawn at random per process, a dash, and a
    counter in hex, so it is at most 34 characters long for the first 2**64
    tokens of a process.

    >>> first, second = new_tag(), new_tag()
    >>> first != second, first.split("-")[0] == second.split("-")[0]
    (True, True)
    """
    return _next_tag()
