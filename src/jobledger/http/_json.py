"""The JSON text of the service's requests and answers, written the same way on both sides.

Compact, non-ASCII characters kept as they are, never ``NaN`` or infinities;
read as ``json.loads`` reads bytes, refusing an object with a key twice (I-JSON).
One encoder and one decoder serve every call: :func:`json.dumps` and
:func:`json.loads` make a new one on each call that passes options.
"""

from __future__ import annotations

import json

from jobledger.wire import reject_duplicate_keys

__all__ = ["dumps", "loads"]


_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_DECODER = json.JSONDecoder(object_pairs_hook=reject_duplicate_keys)


def dumps(value: object) -> str:
    """``value`` as the service's compact JSON text.

    Raises:
        ValueError: ``value`` holds ``NaN`` or an infinity.
        TypeError: ``value`` holds something JSON cannot hold.
    """
    return _ENCODER.encode(value)


def loads(body: bytes) -> object:
    """``body`` as JSON, as ``json.loads`` reads bytes; an object with a key twice is refused.

    Raises:
        ValueError: not JSON (or not in UTF-8, -16 or -32), or a key twice.
        RecursionError: nested too deeply.
    """
    return _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
