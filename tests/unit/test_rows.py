"""The JSON text the durable adapters store documents as (jobledger._adapters.rows)."""

from __future__ import annotations

import json

import pytest

from jobledger import freeze
from jobledger._adapters import rows
from jobledger._adapters.rows import encode_json

# Documents of every JSON kind, with text json's ASCII-only mode would escape.
_DOCUMENTS = [
    {"done": 17, "name": "Zoë \u2028 ☃ \U0001f600", "list": [1, 2.5, -0.0, 1e300, None, True]},
    {"nested": {"a": [{"b": []}, {}], "escaped": 'quote " backslash \\ tab \t'}},
    {},
    {"small": 5e-324, "big": 2**53 - 1, "negative": -(2**53 - 1)},
]


class TestEncodeJson:
    """encode_json: compact, non-ASCII kept, whatever encoder the interpreter offers."""

    @pytest.mark.parametrize("document", _DOCUMENTS)
    def test_the_text_is_what_json_dumps_writes_with_the_ledgers_settings(
        self, document: dict[str, object]
    ) -> None:
        """The text is json.dumps's, compact and with non-ASCII characters kept as they are."""
        expected = json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False)

        assert expected == encode_json(freeze(document, field="state"))

    @pytest.mark.parametrize("document", _DOCUMENTS)
    def test_without_the_c_encoder_the_text_is_the_same(
        self, document: dict[str, object], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Where the interpreter has no C encoder, the text is the same as with it."""
        frozen = freeze(document, field="state")
        with_it = encode_json(frozen)
        monkeypatch.setattr(rows, "_ONE_SHOT", None)

        assert with_it == encode_json(frozen)
