"""Changes proposed for files the benchmarks do not own, measured here before they are made.

Nothing in jobledger uses this module. Cases whose names end in ``+proposal``
run jobledger with one of these in place, so the table shows what a proposal
would buy; no target is measured with them.
"""

from __future__ import annotations

import os
import threading
import time

__all__ = ["buffered_uuid7"]

_COUNTER_MAX = 0xFFF
_RANDOM_BATCH = 4096


class _Uuid7Source:
    """UUIDv7 strings as ``jobledger._application.defaults.new_id`` makes them, cheaper.

    The same layout and the same guarantees (48-bit milliseconds, a 12-bit
    counter that keeps ids of one millisecond increasing, 62 random bits), with
    two costs removed: random bytes are read from the OS 4 KiB at a time instead
    of with two system calls per id, and the text is formatted from the integer
    directly instead of through :class:`uuid.UUID`.
    """

    def __init__(self) -> None:
        """Start with no random bytes and no id handed out."""
        self._lock = threading.Lock()
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
        """A new id."""
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


#: The proposed default id factory (one per process, like ``new_id``'s state).
buffered_uuid7 = _Uuid7Source()
