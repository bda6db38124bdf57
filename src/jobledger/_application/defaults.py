"""The default clock and id factory the facade injects into the core."""

from __future__ import annotations

import os
import threading
import time
import uuid
from datetime import UTC, datetime

__all__ = ["new_id", "utc_now"]


def utc_now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


_COUNTER_MAX = 0xFFF  # rand_a is 12 bits
_last_lock = threading.Lock()
_last = [0, 0]  # the last (milliseconds, counter) handed out in this process


def new_id() -> str:
    """A new unique id that sorts by creation time: a UUID version 7 (RFC 9562).

    Within one millisecond, ids from this process keep increasing: the 12-bit
    ``rand_a`` field counts up from a random start (RFC 9562, method 1).
    """
    millis = time.time_ns() // 1_000_000
    with _last_lock:
        if millis <= _last[0]:
            millis = _last[0]
            counter = _last[1] + 1
            if counter > _COUNTER_MAX:
                millis += 1
                counter = int.from_bytes(os.urandom(2)) & 0x7FF
        else:
            counter = int.from_bytes(os.urandom(2)) & 0x7FF
        _last[0], _last[1] = millis, counter
    random_b = int.from_bytes(os.urandom(8)) & ((1 << 62) - 1)
    value = (millis & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | random_b
    return str(uuid.UUID(int=value))
