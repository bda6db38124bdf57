"""The run model's one codec: every stored value survives encode then decode, and patches apply."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobledger import JsonObject, freeze, merge_patch
from jobledger.runner import (
    Blockage,
    Breakpoint,
    Drive,
    LaunchInput,
    LaunchState,
    Lease,
    Release,
    RunRequest,
    RunState,
    RunTrigger,
    Selection,
    TaskError,
    TaskStatus,
)
from jobledger.runner._model import decode, encode, launch_id, run_state_patch, state_patch
from jobledger.testing import strategies as jst

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

#: Small names: task identifiers, owners, sides.
NAMES = st.text("abcxyz-_0123456789", min_size=1, max_size=8)
COUNTS = st.integers(min_value=0, max_value=10_000)
#: Text the ledger takes: no NUL, no lone surrogate.
TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=20)
SECONDS = st.floats(min_value=0.001, max_value=1e6, allow_nan=False, allow_infinity=False)


def maybe(strategy: SearchStrategy[Any]) -> SearchStrategy[Any]:
    """``strategy`` or ``None``."""
    return st.none() | strategy


def leases() -> SearchStrategy[Lease]:
    """Any lease."""
    return st.builds(Lease, owner=NAMES, expires_at=jst.datetimes(), seconds=SECONDS)


def drives() -> SearchStrategy[Drive]:
    """Any drive."""
    return st.builds(
        Drive,
        number=st.integers(1, 100),
        kind=st.sampled_from(RunTrigger),
        owner=NAMES,
        repair=st.booleans(),
        claimed_at=jst.datetimes(),
        actor=maybe(NAMES),
    )


def run_states() -> SearchStrategy[RunState]:
    """Any run state."""
    return st.builds(
        RunState,
        tasks=COUNTS,
        launches=COUNTS,
        groups=COUNTS,
        step=maybe(st.integers(1, 100)),
        counts=st.dictionaries(st.sampled_from([status.value for status in TaskStatus]), COUNTS),
        drive=maybe(drives()),
        lease=maybe(leases()),
        force=maybe(st.integers(-1000, 1000)),
        breakpoint=maybe(
            st.builds(
                Breakpoint,
                step=st.integers(1, 100),
                tasks=st.lists(NAMES, min_size=1, max_size=3).map(tuple),
            )
        ),
        cancel_requested=st.booleans(),
        failure=maybe(TEXT),
        released=maybe(
            st.builds(Release, drive=st.integers(1, 100), at=jst.datetimes(), reason=NAMES)
        ),
    )


def run_requests() -> SearchStrategy[RunRequest]:
    """Any run request."""
    return st.builds(
        RunRequest,
        definition=NAMES,
        selection=st.builds(
            Selection,
            begin_step=maybe(st.integers(1, 10)),
            end_step=maybe(st.integers(10, 20)),
            task=maybe(NAMES),
            task_type=maybe(NAMES),
            contains=maybe(NAMES),
        ),
        force=maybe(st.integers(-1000, 1000)),
        input=jst.json_values(max_leaves=4),
    )


def launch_inputs() -> SearchStrategy[LaunchInput]:
    """Any launch input."""
    return st.builds(
        LaunchInput,
        run=NAMES,
        task=NAMES,
        launch=st.integers(1, 10_000),
        step=st.integers(1, 100),
        group=maybe(st.integers(1, 10_000)),
        attempt=st.integers(0, 10),
        repair=st.booleans(),
        drive=st.integers(1, 100),
        side=NAMES,
    )


def launch_states() -> SearchStrategy[LaunchState]:
    """Any launch state."""
    return st.builds(
        LaunchState,
        outcome=maybe(st.sampled_from(TaskStatus)),
        started_at=maybe(jst.datetimes()),
        ended_at=maybe(jst.datetimes()),
        duration=maybe(st.floats(min_value=0, max_value=1e6)),
        output=maybe(st.booleans()),
        summary=jst.json_values(max_leaves=4),
        error=maybe(st.builds(TaskError, type=NAMES, message=TEXT)),
        blocked=maybe(st.builds(Blockage, reason=TEXT, details=jst.json_values(max_leaves=3))),
        skip_reason=maybe(TEXT),
        progress=maybe(jst.json_objects(max_leaves=4).map(lambda value: freeze(value, field="p"))),
        cancel_requested=st.booleans(),
        worker=maybe(st.fixed_dictionaries({"host": NAMES, "pid": st.integers(1, 99_999)})),
    )


def null_free(value: Any) -> Any:  # noqa: ANN401  (any JSON value)
    """``value`` without its null object members (a merge patch cannot set one)."""
    if isinstance(value, dict):
        return {key: null_free(member) for key, member in value.items() if member is not None}
    if isinstance(value, list):
        return [null_free(item) for item in value]
    return value


class TestCodec:
    """encode and decode, the run model's one codec."""

    @given(run_states())
    def test_a_run_state_survives_the_round_trip(self, state: RunState) -> None:
        """decode(encode(state)) gives the state back."""
        assert state == decode(encode(state), RunState)

    @given(run_requests())
    def test_a_run_request_survives_the_round_trip(self, request: RunRequest) -> None:
        """decode(encode(request)) gives the request back."""
        assert request == decode(encode(request), RunRequest)

    @given(launch_inputs())
    def test_a_launch_input_survives_the_round_trip(self, launch: LaunchInput) -> None:
        """decode(encode(launch)) gives the launch input back."""
        assert launch == decode(encode(launch), LaunchInput)

    @given(launch_states())
    def test_a_launch_state_survives_the_round_trip(self, state: LaunchState) -> None:
        """decode(encode(state)) gives the launch state back."""
        assert state == decode(encode(state), LaunchState)

    @given(launch_states())
    def test_a_launch_state_writes_the_fields_not_at_their_default(
        self, state: LaunchState
    ) -> None:
        """Its document has a key per field whose value is not its default, in field order."""
        expected = [
            field.name
            for field in attrs.fields(LaunchState)
            if getattr(state, field.name) != field.default
        ]

        assert expected == list(encode(state))

    def test_the_hand_written_encoders_write_every_field(self) -> None:
        """Each value encoded by hand, with every field off its default, has a key per field."""
        at = datetime(2026, 1, 1, 12, tzinfo=UTC)
        values: list[Any] = [
            LaunchState(
                outcome=TaskStatus.FAILED,
                started_at=at,
                ended_at=at,
                duration=1.5,
                output=True,
                summary={"rows": 1},
                error=TaskError(type="ValueError", message="bad", traceback="tb"),
                blocked=Blockage(reason="locked", details=freeze({"by": "x"}, field="details")),
                skip_reason="parent failed",
                progress=cast("JsonObject", freeze({"done": 1}, field="progress")),
                cancel_requested=True,
                worker=cast("JsonObject", freeze({"pid": 1}, field="worker")),
            ),
            LaunchInput(
                run="run-1",
                task="a",
                launch=1,
                step=1,
                group=2,
                attempt=1,
                repair=True,
                drive=3,
                side="server",
            ),
            RunRequest(
                definition="Nightly", selection=Selection(begin_step=2), force=1, input={"a": 1}
            ),
        ]
        at_default = [
            (type(value).__name__, field.name)
            for value in values
            for field in attrs.fields(type(value))
            if getattr(value, field.name) == field.default
        ]

        assert [] == at_default  # a new field must be set above, and then written
        assert [[field.name for field in attrs.fields(type(value))] for value in values] == [
            list(encode(value)) for value in values
        ]

    @given(run_states())
    def test_an_encoded_run_state_is_json_the_ledger_takes(self, state: RunState) -> None:
        """The encoded state freezes as a JSON object, with its layout always written."""
        frozen = freeze(encode(state), field="state")

        assert isinstance(frozen, JsonObject)
        assert 2 == frozen["layout"]

    def test_defaults_are_left_out_of_the_documents(self) -> None:
        """A fresh run's state holds its layout, its task count and what is set, nothing more."""
        state = RunState(tasks=3, counts={"pending": 3, "completed": 0})

        assert {"layout": 2, "tasks": 3, "counts": {"pending": 3}} == encode(state)

    def test_a_drive_names_its_actor_only_when_it_has_one(self) -> None:
        """A drive's ``actor`` is written when set, left out when ``None``, and read back."""
        at = datetime(2026, 1, 1, 12, tzinfo=UTC)
        named = Drive(2, RunTrigger.RESUME, "drive-2", repair=True, claimed_at=at, actor="alice")
        anonymous = Drive(1, RunTrigger.INVOKE, "drive-1", repair=False, claimed_at=at)

        assert {
            "number": 2,
            "kind": "resume",
            "owner": "drive-2",
            "repair": True,
            "claimed_at": "2026-01-01T12:00:00+00:00",
            "actor": "alice",
        } == encode(named)
        assert "actor" not in encode(anonymous)
        assert (named, anonymous) == (
            decode(encode(named), Drive),
            decode(encode(anonymous), Drive),
        )

    def test_a_launch_input_keeps_every_field(self) -> None:
        """A launch input is written whole: its group too, even a skip's None."""
        launch = LaunchInput(
            run="run-1", task="a", launch=1, step=1, group=None, attempt=0, drive=1, side="server"
        )

        assert {
            "run": "run-1",
            "task": "a",
            "launch": 1,
            "step": 1,
            "group": None,
            "attempt": 0,
            "repair": False,
            "drive": 1,
            "side": "server",
        } == encode(launch)

    def test_a_run_request_keeps_every_field(self) -> None:
        """A run's request is written whole: its selection as set, its force and input if None."""
        request = RunRequest(definition="Nightly", selection=Selection(begin_step=2))

        assert {
            "definition": "Nightly",
            "selection": {"begin_step": 2},
            "force": None,
            "input": None,
        } == encode(request)

    def test_times_are_written_as_iso_8601(self) -> None:
        """A lease's expiry is its ISO text."""
        lease = Lease("drive-1", datetime(2026, 1, 1, 12, tzinfo=UTC), 30.0)

        assert {
            "owner": "drive-1",
            "expires_at": "2026-01-01T12:00:00+00:00",
            "seconds": 30.0,
        } == encode(lease)

    @pytest.mark.parametrize(
        ("document", "cls"),
        [
            ({"tasks": "three"}, RunState),
            ({"selection": {}}, RunRequest),
            ({"run": "r"}, LaunchInput),
            ({"outcome": "exploded"}, LaunchState),
            ("not an object", RunState),
        ],
    )
    def test_a_document_that_is_not_the_value_is_refused(self, document: object, cls: type) -> None:
        """Decode raises ValueError naming the class and the layout."""
        with pytest.raises(ValueError, match=f"not a {cls.__name__} of layout 2"):
            decode(document, cls)

    def test_launch_ids_follow_the_run(self) -> None:
        """The n-th launch of a run is the job ``<run id>/<n>``."""
        assert ["run-1/1", "run-1/12"] == [launch_id("run-1", 1), launch_id("run-1", 12)]


class TestStatePatch:
    """state_patch: the merge patch the driver writes between two states."""

    @given(run_states(), run_states())
    def test_patching_a_run_state_gives_the_next(self, before: RunState, after: RunState) -> None:
        """The ledger's merge patch of the patch between two run states turns one into the other."""
        old, new = encode(before), encode(after)

        patched = merge_patch(freeze(old, field="s"), freeze(state_patch(old, new), field="p"))

        assert freeze(new, field="s") == patched
        assert after == decode(patched, RunState)

    @given(jst.json_objects(), jst.json_objects())
    def test_patching_any_object_gives_the_next(
        self, before: dict[str, Any], after: dict[str, Any]
    ) -> None:
        """For JSON objects without null members, the patch turns ``before`` into ``after``."""
        old, new = null_free(before), null_free(after)

        patched = merge_patch(freeze(old, field="s"), freeze(state_patch(old, new), field="p"))

        assert freeze(new, field="s") == patched

    @given(run_states())
    def test_a_state_patched_to_itself_is_an_empty_patch(self, state: RunState) -> None:
        """No change, no member in the patch."""
        assert {} == state_patch(encode(state), encode(state))

    def test_a_member_back_to_its_default_is_removed(self) -> None:
        """A lease given up (back to None) is a null in the patch."""
        lease = Lease("drive-1", datetime(2026, 1, 1, 12, tzinfo=UTC), 30.0)
        held, released = RunState(tasks=1, lease=lease), RunState(tasks=1)

        assert {"lease": None} == state_patch(encode(held), encode(released))


class TestRunStatePatch:
    """run_state_patch: the same patch, encoding only the fields that changed."""

    @given(run_states(), run_states())
    def test_it_is_the_patch_between_the_encodings(self, before: RunState, after: RunState) -> None:
        """Equal to state_patch of the two encodings, and it gives the new encoding."""
        old, new = encode(before), encode(after)

        assert (state_patch(old, new), new) == run_state_patch(before, old, after)

    @given(run_states())
    def test_a_state_to_itself_is_an_empty_patch(self, state: RunState) -> None:
        """No change: nothing in the patch, the encoding as it was."""
        old = encode(state)

        assert ({}, old) == run_state_patch(state, old, state)

    def test_a_member_back_to_its_default_is_removed(self) -> None:
        """A lease given up (back to None) is a null in the patch, and left out after."""
        lease = Lease("drive-1", datetime(2026, 1, 1, 12, tzinfo=UTC), 30.0)
        held, released = RunState(tasks=1, lease=lease), RunState(tasks=1)

        assert ({"lease": None}, {"layout": 2, "tasks": 1}) == run_state_patch(
            held, encode(held), released
        )


class TestStepped:
    """RunState.stepped: a step's new state, made without attrs.evolve."""

    def test_it_is_evolve_of_the_step_fields_and_keeps_every_other(self) -> None:
        """Every field not given is kept as it was (each set here to a value not its default)."""
        at = datetime(2026, 1, 1, 12, tzinfo=UTC)
        fields: dict[str, Any] = {
            "layout": 2,
            "tasks": 9,
            "launches": 4,
            "groups": 3,
            "step": 2,
            "counts": {"pending": 5, "completed": 4},
            "drive": Drive(2, RunTrigger.RESUME, "drive-2", repair=True, claimed_at=at),
            "lease": Lease("drive-2", at, 30.0),
            "force": 7,
            "breakpoint": Breakpoint(2, ("a",)),
            "cancel_requested": True,
            "cancel_requested_by": "alice",
            "failure": "the ledger refused",
            "released": Release(1, at, "interrupted"),
        }
        state = RunState(**fields)
        step: dict[str, Any] = {
            "launches": 5,
            "groups": 4,
            "step": 3,
            "counts": {"pending": 4, "completed": 4, "running": 1},
            "lease": Lease("drive-2", at.replace(hour=13), 30.0),
        }

        assert {field.name for field in attrs.fields(RunState)} == set(fields)
        assert attrs.evolve(state, **step) == state.stepped(**step)
