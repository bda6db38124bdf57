"""The default clock and id factory the facade injects into the core."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime

__all__ = ["new_id", "utc_now"]


def utc_now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


_COUNTER_MAX = 0xFFF  # rand_a is 12 bits
_RANDOM_BATCH = 4096  # random bytes read from the OS at a time


class _Uuid7Source:
    """UUIDv7 strings (RFC 9562) that sort by creation time.

    Within one millisecond, ids from this process keep increasing: the 12-bit
    ``rand_a`` field counts up from a random start (RFC 9562, method 1); the
    other 62 bits are random. Random bytes are read from the OS 4 KiB at a
    time, and a forked child discards its parent's, so no two processes ever
    share them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._millis = 0
        self._counter = 0
        self._random = b""
        self._offset = 0

    def _take(self, count: int) -> int:
        if self._offset + count > len(self._random):
            self._random = os.urandom(_RANDOM_BATCH)
            self._offset = 0
        start = self._offset
        self._offset = start + count
        return int.from_bytes(self._random[start : start + count])

    def __call__(self) -> str:
        millis = time.time_ns() // 1_000_000
        with self._lock:
            if millis <= self._millis:
                millis = self._millis
                counter = self._counter + 1
                if counter > _COUNTER_MAX:
                    millis += 1
                    counter = self._take(2) & 0x7FF
            else:
                counter = self._take(2) & 0x7FF
            self._millis, self._counter = millis, counter
            random_b = self._take(8) & ((1 << 62) - 1)
        value = (millis & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | random_b
        text = f"{value:032x}"
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


_source = _Uuid7Source()
os.register_at_fork(after_in_child=_source._reset)  # noqa: SLF001  (this module's own)


def new_id() -> str:
    """A new unique id that sorts by creation time: a UUID version 7 (RFC 9562).

    >>> import uuid
    >>> uuid.UUID(new_id()).version
    7
    """
    return _source()
