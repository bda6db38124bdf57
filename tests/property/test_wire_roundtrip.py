"""Every serialized type survives the wire: as a dict, as JSON text, and as UTF-8 bytes."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobledger import (
    EVENT_TYPES,
    CancelJob,
    CompleteJob,
    FailJob,
    Job,
    JobCanceled,
    JobCompleted,
    JobFailed,
    JobStarted,
    JobUpdate,
    JobUpdated,
    StartJob,
    UpdateJob,
    wire,
)
from jobledger.testing import strategies as jst

Decoder = Callable[[str | bytes | Mapping[str, Any]], object]

# Every type the wire carries, with a strategy for it and the decoder that reads it.
SERIALIZED: dict[type, tuple[st.SearchStrategy[Any], Decoder]] = {
    StartJob: (jst.start_commands(), wire.decode_command),
    UpdateJob: (jst.update_commands(), wire.decode_command),
    CompleteJob: (jst.complete_commands(), wire.decode_command),
    FailJob: (jst.fail_commands(), wire.decode_command),
    CancelJob: (jst.cancel_commands(), wire.decode_command),
    JobStarted: (jst.events(JobStarted), wire.decode_event),
    JobUpdated: (jst.events(JobUpdated), wire.decode_event),
    JobCompleted: (jst.events(JobCompleted), wire.decode_event),
    JobFailed: (jst.events(JobFailed), wire.decode_event),
    JobCanceled: (jst.events(JobCanceled), wire.decode_event),
    Job: (jst.jobs(), wire.decode_job),
    JobUpdate: (jst.job_updates(), wire.decode_update),
}


class TestWireRoundTrip:
    """decode(encode(x)) == x for every command, event, job and update."""

    def test_every_serialized_type_is_covered(self) -> None:
        """The round trip covers the five commands, the five events, Job and JobUpdate."""
        commands = {StartJob, UpdateJob, CompleteJob, FailJob, CancelJob}

        assert commands | set(EVENT_TYPES) | {Job, JobUpdate} == set(SERIALIZED)

    @pytest.mark.parametrize("kind", list(SERIALIZED), ids=lambda kind: kind.__name__)
    @settings(max_examples=50, deadline=None)
    @given(data=st.data())
    def test_value_survives_the_wire(self, kind: type, data: st.DataObject) -> None:
        """A value decoded from its dict, its JSON text or its UTF-8 bytes equals the original."""
        strategy, decode = SERIALIZED[kind]
        value = data.draw(strategy)

        encoded = wire.encode(value)
        text = wire.dumps(value)

        assert kind is type(value)
        assert value == decode(encoded)
        assert value == decode(text)
        assert value == decode(text.encode("utf-8"))
        assert encoded == json.loads(text)

    @settings(max_examples=50, deadline=None)
    @given(st.one_of(jst.commands(), jst.events(), jst.jobs(), jst.job_updates()))
    def test_encoding_is_stable(self, value: wire.Serializable) -> None:
        """Encoding a decoded value again gives the same JSON text."""
        decoders: dict[type, Decoder] = {kind: decode for kind, (_, decode) in SERIALIZED.items()}
        text = wire.dumps(value)

        assert text == wire.dumps(decoders[type(value)](text))  # type: ignore[arg-type]
