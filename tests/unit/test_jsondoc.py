"""Specification of jobledger's JSON documents: freezing, read-only containers, limits."""

from __future__ import annotations

import copy
import enum
import json
import pickle
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobledger import (
    DEFAULT_LIMITS,
    InvalidJobDataError,
    JsonArray,
    JsonObject,
    Limits,
    StartJob,
    UpdateJob,
    freeze,
    thaw,
)
from jobledger._core import jsondoc
from jobledger._core.jsondoc import HARD_MAX_DEPTH, MAX_SAFE_INTEGER, encoded_size

if TYPE_CHECKING:
    from collections.abc import Callable

    from jobledger import JsonValue

MIB = 1_048_576


def nested_objects(depth: int) -> dict[str, object]:
    """Build ``{"a": {"a": ... {}}}`` with ``depth`` objects, without recursion."""
    root: dict[str, object] = {}
    current = root
    for _ in range(depth - 1):
        child: dict[str, object] = {}
        current["a"] = child
        current = child
    return root


def nested_arrays(depth: int) -> list[object]:
    """Build ``[[...[]]]`` with ``depth`` arrays, without recursion."""
    root: list[object] = []
    current = root
    for _ in range(depth - 1):
        child: list[object] = []
        current.append(child)
        current = child
    return root


def compact_size(value: object) -> int:
    """The UTF-8 size of ``value`` encoded as compact JSON, as the size limit counts it."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def frozen_object(value: dict[str, object]) -> JsonObject:
    """Freeze ``value`` and check that it became a JsonObject."""
    frozen = freeze(value, field="state")
    assert isinstance(frozen, JsonObject)
    return frozen


def frozen_array(value: list[object]) -> JsonArray:
    """Freeze ``value`` and check that it became a JsonArray."""
    frozen = freeze(value, field="input")
    assert isinstance(frozen, JsonArray)
    return frozen


def invalid(value: object, *, limits: Limits = DEFAULT_LIMITS) -> InvalidJobDataError:
    """Freeze ``value`` as ``state`` and return the InvalidJobDataError it raises."""
    with pytest.raises(InvalidJobDataError) as caught:
        freeze(value, field="state", limits=limits)
    return caught.value


class Color(enum.IntEnum):
    """An int subclass, to prove that freezing keeps plain ints only."""

    RED = 1


class Phase(enum.StrEnum):
    """A StrEnum, as the runner's statuses are."""

    DONE = "done"


class Label(str):
    """A str subclass, to prove that freezing keeps plain strings only."""

    __slots__ = ()


# A safe text for the size property: characters that compact JSON writes as they are.
_PLAIN_TEXT = st.text(
    st.characters(codec="utf-8", min_codepoint=0x20, exclude_characters='"\\'), max_size=8
)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _PLAIN_TEXT
)
_DOCUMENTS = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(_PLAIN_TEXT, children, max_size=4)
    ),
    max_leaves=16,
)


class TestFreezeAcceptedValues:
    """freeze accepts every JSON type and returns an equal, read-only value."""

    @pytest.mark.parametrize(
        "value",
        [
            None,
            True,
            False,
            0,
            -7,
            MAX_SAFE_INTEGER,
            -MAX_SAFE_INTEGER,
            1.5,
            -0.0,
            1e300,
            "",
            "plain text",
            "ünïcødé ✓ 😀",
            [],
            {},
            [1, "two", 3.0, None, True, [], {}],
            {"a": {"b": [1, {"c": None}]}, "": "empty key"},
        ],
    )
    def test_every_json_type_is_accepted_and_equal(self, value: object) -> None:
        """Every JSON type freezes to a value equal to the one given."""
        assert value == freeze(value, field="state")

    def test_objects_become_json_objects(self) -> None:
        """A dict, however nested, freezes to JsonObject all the way down."""
        frozen = frozen_object({"a": {"b": {}}})
        inner = frozen["a"]
        assert isinstance(inner, JsonObject)
        assert isinstance(inner["b"], JsonObject)

    def test_lists_and_tuples_become_json_arrays(self) -> None:
        """Lists and tuples freeze to JsonArray, nested ones too."""
        frozen = freeze((1, [2, (3,)]), field="input")
        assert isinstance(frozen, JsonArray)
        assert [1, [2, [3]]] == frozen
        assert isinstance(frozen[1], JsonArray)

    def test_any_mapping_is_an_object(self) -> None:
        """A read-only Mapping that is not a dict freezes to a JsonObject."""
        frozen = freeze(MappingProxyType({"a": 1}), field="state")
        assert isinstance(frozen, JsonObject)
        assert {"a": 1} == frozen

    def test_subclasses_of_str_and_int_become_plain(self) -> None:
        """Values of str and int subclasses are kept as plain str and int."""
        frozen = frozen_object({"label": Label("x"), "color": Color.RED, Label("k"): 1})
        assert (str, int) == (type(frozen["label"]), type(frozen["color"]))
        assert [str, str, str] == [type(key) for key in frozen]

    def test_str_enum_members_take_the_one_pass_path(self) -> None:
        """A StrEnum member among plain values is frozen in the one pass, as its plain text."""
        document: dict[object, object] = {"status": Phase.DONE, "log": [Phase.DONE, "x"]}
        one_pass = jsondoc._quick(document, 0, HARD_MAX_DEPTH, MIB)
        plain = frozen_object({"status": "done", "log": ["done", "x"]})
        assert isinstance(one_pass, JsonObject)
        assert one_pass is not jsondoc._UNUSUAL
        assert (plain, str) == (one_pass, type(one_pass["status"]))
        assert encoded_size(plain) == encoded_size(one_pass)

    def test_a_frozen_value_is_shared_not_copied(self) -> None:
        """Freezing an already frozen document returns that very document."""
        frozen = frozen_object({"a": [1]})
        assert frozen is freeze(frozen, field="state")
        assert frozen is frozen_object({"outer": frozen})["outer"]

    def test_a_command_holds_a_frozen_value_as_it_is(self) -> None:
        """A command given frozen JSON keeps that very value, for its state and its patch."""
        state, patch = frozen_object({"done": 0}), frozen_object({"done": 1})
        start = StartJob(service="hr", entity="employee", type="sync", state=state, input=patch)
        update = UpdateJob(job_id="j", etag="e", state_update=patch)
        assert (True, True, True) == (
            start.state is state,
            start.input is patch,
            update.state_update is patch,
        )


class TestJsonObjectIsReadOnly:
    """Every mutating method of JsonObject raises TypeError and changes nothing."""

    @staticmethod
    def _ior(obj: JsonObject) -> None:
        obj |= {"b": 2}

    @pytest.mark.parametrize(
        "mutate",
        [
            lambda obj: obj.__setitem__("b", 2),
            lambda obj: obj.__delitem__("a"),
            lambda obj: obj.clear(),
            lambda obj: obj.pop("a"),
            lambda obj: obj.pop("missing", None),
            lambda obj: obj.popitem(),
            lambda obj: obj.setdefault("b", 2),
            lambda obj: obj.update({"b": 2}),
            lambda obj: obj.update(b=2),
            lambda obj: JsonObject.__init__(obj, {"b": 2}),
            _ior,
        ],
        ids=[
            "setitem",
            "delitem",
            "clear",
            "pop",
            "pop-default",
            "popitem",
            "setdefault",
            "update",
            "update-keywords",
            "init",
            "ior",
        ],
    )
    def test_mutation_raises_type_error(self, mutate: Callable[[JsonObject], object]) -> None:
        """The mutation raises TypeError and the object keeps its members."""
        obj = frozen_object({"a": 1})
        with pytest.raises(TypeError, match="read-only"):
            mutate(obj)
        assert {"a": 1} == obj

    def test_no_new_instance_can_be_built_directly(self) -> None:
        """Building a JsonObject directly, or with fromkeys, raises TypeError."""
        with pytest.raises(TypeError, match="read-only"):
            JsonObject({"a": 1})
        with pytest.raises(TypeError, match="read-only"):
            JsonObject.fromkeys(["a"])

    def test_copy_method_gives_a_plain_mutable_dict(self) -> None:
        """obj.copy() is a plain dict that can change without changing obj."""
        obj = frozen_object({"a": 1})
        plain = obj.copy()
        plain["b"] = 2
        assert (dict, {"a": 1, "b": 2}, {"a": 1}) == (type(plain), plain, obj)


class TestJsonArrayIsReadOnly:
    """Every mutating method of JsonArray raises TypeError and changes nothing."""

    @staticmethod
    def _iadd(arr: JsonArray) -> None:
        arr += [4]

    @staticmethod
    def _imul(arr: JsonArray) -> None:
        arr *= 2

    @pytest.mark.parametrize(
        "mutate",
        [
            lambda arr: arr.__setitem__(0, 9),
            lambda arr: arr.__setitem__(slice(0, 1), [9]),
            lambda arr: arr.__delitem__(0),
            lambda arr: arr.__delitem__(slice(None)),
            lambda arr: arr.append(4),
            lambda arr: arr.extend([4]),
            lambda arr: arr.insert(0, 4),
            lambda arr: arr.pop(),
            lambda arr: arr.remove(1),
            lambda arr: arr.reverse(),
            lambda arr: arr.sort(),
            lambda arr: arr.sort(reverse=True),
            lambda arr: arr.clear(),
            lambda arr: JsonArray.__init__(arr, [9]),
            _iadd,
            _imul,
        ],
        ids=[
            "setitem",
            "setitem-slice",
            "delitem",
            "delitem-slice",
            "append",
            "extend",
            "insert",
            "pop",
            "remove",
            "reverse",
            "sort",
            "sort-reverse",
            "clear",
            "init",
            "iadd",
            "imul",
        ],
    )
    def test_mutation_raises_type_error(self, mutate: Callable[[JsonArray], object]) -> None:
        """The mutation raises TypeError and the array keeps its items in order."""
        arr = frozen_array([3, 1, 2])
        with pytest.raises(TypeError, match="read-only"):
            mutate(arr)
        assert [3, 1, 2] == arr

    def test_no_new_instance_can_be_built_directly(self) -> None:
        """Building a JsonArray directly raises TypeError."""
        with pytest.raises(TypeError, match="read-only"):
            JsonArray([1])

    def test_operators_that_build_new_lists_still_work(self) -> None:
        """+, * and copy() give new plain lists and leave the array as it was."""
        arr = frozen_array([1, 2])
        joined = arr + [3]  # noqa: RUF005  (the + operator is what this test is about)
        assert ([1, 2, 3], [1, 2, 1, 2], [1, 2]) == (joined, arr * 2, arr.copy())
        assert (list, list, list) == (type(joined), type(arr * 2), type(arr.copy()))
        assert [1, 2] == arr


class TestJsonContainersBehaveLikeJson:
    """Frozen containers compare, serialize, copy and pickle like plain JSON."""

    def test_equal_to_plain_dicts_and_lists(self) -> None:
        """A frozen document equals the plain dicts and lists it came from, both ways round."""
        plain = {"a": [1, {"b": None}], "c": "d"}
        frozen = freeze(plain, field="state")
        assert plain == frozen
        assert frozen == plain
        assert {"a": [1, {"b": None}], "c": "e"} != frozen

    def test_equal_documents_hash_equal(self) -> None:
        """Frozen documents are hashable, and equal ones hash alike whatever their key order."""
        first = freeze({"a": [1, {"b": None}], "c": "d"}, field="state")
        second = freeze({"c": "d", "a": [1, {"b": None}]}, field="state")
        assert hash(first) == hash(second)
        assert 1 == len({first, second})

    def test_values_holding_frozen_documents_are_hashable(self) -> None:
        """A command holding frozen JSON can be a dict key or a set member."""
        command = StartJob(service="hr", entity="employee", type="sync", input={"a": [1]})
        twin = StartJob(service="hr", entity="employee", type="sync", input={"a": [1]})
        assert {command: "seen"}[twin] == "seen"

    def test_json_dumps_accepts_frozen_documents(self) -> None:
        """json.dumps writes a frozen document exactly as it writes the plain one."""
        plain = {"a": [1, 2.5, {"b": None}], "c": "ü", "d": True}
        frozen = freeze(plain, field="state")
        assert json.dumps(plain, sort_keys=True) == json.dumps(frozen, sort_keys=True)

    def test_copy_and_deepcopy_return_the_same_immutable_value(self) -> None:
        """copy.copy and copy.deepcopy give an equal read-only document."""
        frozen = frozen_object({"a": [1, {"b": 2}]})
        for duplicate in (copy.copy(frozen), copy.deepcopy(frozen)):
            assert {"a": [1, {"b": 2}]} == duplicate
            assert isinstance(duplicate, JsonObject)
            assert isinstance(duplicate["a"], JsonArray)

    @pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
    def test_pickle_round_trip_keeps_value_and_read_only_types(self, protocol: int) -> None:
        """A pickled document loads back equal, read-only, and with the same size and depth."""
        frozen = frozen_object({"a": [1, {"b": "ü"}], "c": None})
        loaded = pickle.loads(pickle.dumps(frozen, protocol=protocol))  # noqa: S301  (our own bytes)
        assert {"a": [1, {"b": "ü"}], "c": None} == loaded
        assert isinstance(loaded, JsonObject)
        assert isinstance(loaded["a"], JsonArray)
        assert isinstance(loaded["a"][1], JsonObject)
        assert (frozen._size, frozen._depth) == (loaded._size, loaded._depth)
        with pytest.raises(TypeError, match="read-only"):
            loaded["x"] = 1

    def test_pickle_round_trip_at_the_hard_maximum_depth(self) -> None:
        """A document as deep as any Limits allows pickles and loads back equal."""
        frozen = freeze(
            nested_objects(HARD_MAX_DEPTH), field="state", limits=Limits(max_depth=HARD_MAX_DEPTH)
        )
        loaded = pickle.loads(pickle.dumps(frozen))  # noqa: S301  (our own bytes)
        assert HARD_MAX_DEPTH == loaded._depth

    def test_thaw_gives_an_independent_mutable_copy(self) -> None:
        """Thawing returns plain dicts and lists whose changes never reach the frozen document."""
        frozen = frozen_object({"a": [1, {"b": 2}]})
        plain = thaw(frozen)
        plain["a"].append(3)
        plain["a"][1]["b"] = 99
        plain["new"] = True
        assert (dict, list, dict) == (type(plain), type(plain["a"]), type(plain["a"][1]))
        assert {"a": [1, {"b": 2}]} == frozen
        assert {"a": [1, {"b": 99}, 3], "new": True} == plain

    @pytest.mark.parametrize("value", [None, True, 3, 2.5, "text"])
    def test_thaw_returns_scalars_as_they_are(self, value: JsonValue) -> None:
        """Thawing a scalar returns that scalar."""
        assert value == thaw(value)

    def test_thaw_at_the_hard_maximum_depth(self) -> None:
        """Thawing copies a document as deep as any Limits allows, without RecursionError."""
        limits = Limits(max_depth=HARD_MAX_DEPTH)
        frozen = freeze(nested_arrays(HARD_MAX_DEPTH), field="state", limits=limits)
        plain = thaw(frozen)
        assert frozen == freeze(plain, field="state", limits=limits)

    def test_mutating_the_source_after_freeze_changes_nothing(self) -> None:
        """Changing the dicts and lists given to freeze leaves the frozen document as it was."""
        source: dict[str, object] = {"items": [1, 2], "nested": {"k": "v"}}
        frozen = freeze(source, field="state")
        items = source["items"]
        nested = source["nested"]
        assert isinstance(items, list)
        assert isinstance(nested, dict)
        items.append(3)
        nested["k"] = "changed"
        source["added"] = 1
        assert {"items": [1, 2], "nested": {"k": "v"}} == frozen


class TestHostileJson:
    """Hostile JSON raises InvalidJobDataError naming the field, the JSON Pointer and why."""

    @pytest.mark.parametrize(
        ("value", "path", "reason"),
        [
            ({"ratio": float("nan")}, "/ratio", "nan is not a JSON number"),
            (float("inf"), "", "inf is not a JSON number"),
            ({"a": [1, {"b": float("-inf")}]}, "/a/1/b", "-inf is not a JSON number"),
            ([float("-inf")], "/0", "-inf is not a JSON number"),
            ({"a/b": {"c~d": float("nan")}}, "/a~1b/c~0d", "nan is not a JSON number"),
            ({"~1": [float("inf")]}, "/~01/0", "inf is not a JSON number"),
        ],
        ids=["nan", "infinity", "nested-minus-infinity", "minus-infinity", "escaped", "tilde-one"],
    )
    def test_non_finite_numbers(self, value: object, path: str, reason: str) -> None:
        """NaN and the infinities are refused wherever they are, with an escaped pointer."""
        error = invalid(value)
        assert ("state", path) == (error.field, error.path)
        assert reason in error.reason

    @pytest.mark.parametrize(
        ("value", "path", "kind"),
        [
            ({1: "x"}, "", "int"),
            ({"outer": {None: 1}}, "/outer", "NoneType"),
            ({"list": [{(1, 2): 1}]}, "/list/0", "tuple"),
            ({True: 1}, "", "bool"),
        ],
        ids=["int", "none", "tuple", "bool"],
    )
    def test_non_string_keys(self, value: object, path: str, kind: str) -> None:
        """A key that is not a string is refused at the object that holds it."""
        error = invalid(value)
        assert ("state", path) == (error.field, error.path)
        assert f"object keys must be strings, not {kind}" == error.reason

    @pytest.mark.parametrize(
        ("value", "path", "reason"),
        [
            ({"s": "ok\ud800"}, "/s", "string has a lone surrogate at character 2"),
            (["\udfff"], "/0", "string has a lone surrogate at character 0"),
            ("\ud83d", "", "string has a lone surrogate at character 0"),
            ({"k\udc00": 1}, "/k\\udc00", "key has a lone surrogate at character 1"),
            ({"o": {"\ud800": 1}}, "/o/\\ud800", "key has a lone surrogate at character 0"),
        ],
        ids=["string", "array-item", "top-level", "key", "nested-key"],
    )
    def test_lone_surrogates(self, value: object, path: str, reason: str) -> None:
        """A lone surrogate in a string or a key is refused; the pointer shows it escaped."""
        error = invalid(value)
        assert ("state", path, reason) == (error.field, error.path, error.reason)

    @pytest.mark.parametrize(
        ("value", "path", "reason"),
        [
            ({"s": "a\x00b"}, "/s", "string contains a NUL character (U+0000)"),
            ("\x00", "", "string contains a NUL character (U+0000)"),
            ({"a\x00": 1}, "/a\x00", "key contains a NUL character (U+0000)"),
            ([{"x\x00y": None}], "/0/x\x00y", "key contains a NUL character (U+0000)"),
        ],
        ids=["string", "top-level", "key", "nested-key"],
    )
    def test_nul_characters(self, value: object, path: str, reason: str) -> None:
        """A NUL character in a string or a key is refused."""
        error = invalid(value)
        assert ("state", path, reason) == (error.field, error.path, error.reason)

    def test_ten_thousand_nested_objects(self) -> None:
        """10,000 nested objects give InvalidJobDataError at the limit, never RecursionError."""
        error = invalid(nested_objects(10_000))
        assert ("state", "/a" * 64) == (error.field, error.path)
        assert "nested deeper than 64 levels" == error.reason

    def test_ten_thousand_nested_arrays(self) -> None:
        """10,000 nested arrays give InvalidJobDataError at the limit, never RecursionError."""
        error = invalid(nested_arrays(10_000))
        assert ("state", "/0" * 64) == (error.field, error.path)
        assert "nested deeper than 64 levels" == error.reason

    def test_ten_thousand_nested_arrays_at_the_hard_depth(self) -> None:
        """With the deepest Limits allowed, 10,000 nested arrays are still refused cleanly."""
        error = invalid(nested_arrays(10_000), limits=Limits(max_depth=HARD_MAX_DEPTH))
        assert "/0" * HARD_MAX_DEPTH == error.path

    def test_over_size_with_the_default_limit(self) -> None:
        """A document over 1 MiB is refused with the default limits."""
        error = invalid({"blob": "x" * MIB})
        assert ("state", "") == (error.field, error.path)
        assert f"the document is larger than {MIB} bytes" == error.reason

    def test_exactly_the_default_size_limit_is_accepted(self) -> None:
        """A document of exactly 1 MiB is accepted with the default limits."""
        document = {"blob": "x" * (MIB - len('{"blob":""}'))}
        assert MIB == compact_size(document)
        assert document == freeze(document, field="state")

    def test_over_size_with_a_configured_limit(self) -> None:
        """A configured small max_bytes refuses a larger document."""
        error = invalid({"a": "0123456789"}, limits=Limits(max_bytes=10))
        assert ("state", "") == (error.field, error.path)
        assert "the document is larger than 10 bytes" == error.reason

    @pytest.mark.parametrize(
        ("value", "path"),
        [
            (2**53, ""),
            (-(2**53), ""),
            ({"n": 2**53}, "/n"),
            ({"n": [-(2**53)]}, "/n/0"),
            ({"n": 10**5000}, "/n"),
            ([-(10**5000)], "/0"),
        ],
        ids=["2**53", "-(2**53)", "nested", "nested-negative", "huge", "huge-negative"],
    )
    def test_integers_beyond_the_i_json_range(self, value: object, path: str) -> None:
        """Integers beyond +-(2**53-1), however huge, are refused as data errors."""
        error = invalid(value)
        assert ("state", path) == (error.field, error.path)
        assert "outside the I-JSON range" in error.reason

    @pytest.mark.parametrize("value", [MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER])
    def test_integers_at_the_i_json_bounds_are_accepted(self, value: int) -> None:
        """+-(2**53-1) are the largest integers accepted."""
        assert {"n": value} == freeze({"n": value}, field="state")

    @pytest.mark.parametrize(
        ("value", "kind"),
        [
            ({1, 2}, "set"),
            (frozenset(), "frozenset"),
            (b"bytes", "bytes"),
            (bytearray(b"x"), "bytearray"),
            (datetime(2024, 1, 1, tzinfo=UTC), "datetime"),
            (object(), "object"),
            (1j, "complex"),
        ],
        ids=["set", "frozenset", "bytes", "bytearray", "datetime", "object", "complex"],
    )
    def test_unsupported_types(self, value: object, kind: str) -> None:
        """A value of a non-JSON type is refused, at the top level and nested."""
        top = invalid(value)
        nested = invalid({"a": [value]})
        assert ("", "/a/0") == (top.path, nested.path)
        assert f"a {kind} is not a JSON value" == nested.reason

    def test_the_field_name_is_the_one_given(self) -> None:
        """The error names the field that freeze was asked to check."""
        with pytest.raises(InvalidJobDataError) as caught:
            freeze({"x": float("nan")}, field="state_update")
        assert ("state_update", "/x") == (caught.value.field, caught.value.path)
        assert "invalid state_update at /x: nan is not a JSON number" in str(caught.value)


class TestLimits:
    """Limits have documented defaults, are enforced, and refuse nonsense values."""

    def test_defaults(self) -> None:
        """The defaults are depth 64, 1 MiB, names of 200 and texts of 10,000 characters."""
        assert (64, MIB, 200, 10_000) == (
            DEFAULT_LIMITS.max_depth,
            DEFAULT_LIMITS.max_bytes,
            DEFAULT_LIMITS.max_name_length,
            DEFAULT_LIMITS.max_text_length,
        )
        assert Limits() == DEFAULT_LIMITS

    def test_configured_depth_is_enforced(self) -> None:
        """With max_depth 2, two levels are accepted and a third is refused."""
        limits = Limits(max_depth=2)
        assert {"a": {"b": 1}} == freeze({"a": {"b": 1}}, field="state", limits=limits)
        error = invalid({"a": {"b": {}}}, limits=limits)
        assert ("/a/b", "nested deeper than 2 levels") == (error.path, error.reason)

    def test_configured_depth_counts_frozen_subdocuments(self) -> None:
        """An already frozen subdocument counts its own depth; the path points inside it."""
        deep = frozen_object({"b": {"c": {}}})
        error = invalid({"a": deep}, limits=Limits(max_depth=3))
        assert ("/a/b/c", "nested deeper than 3 levels") == (error.path, error.reason)

    def test_a_frozen_document_is_held_to_the_limits_given(self) -> None:
        """A document frozen under wide limits is refused by narrower ones, with the same errors."""
        deep, large = frozen_object({"a": {"b": {"c": {}}}}), frozen_object({"abc": "0123456789"})
        depth, size = (
            invalid(deep, limits=Limits(max_depth=3)),
            invalid(large, limits=Limits(max_bytes=19)),
        )
        assert (
            ("/a/b/c", "nested deeper than 3 levels"),
            ("", "the document is larger than 19 bytes"),
        ) == ((depth.path, depth.reason), (size.path, size.reason))

    def test_configured_size_is_enforced(self) -> None:
        """With max_bytes 20, a 20-byte document is accepted."""
        document = {"abc": "0123456789"}
        assert 20 == compact_size(document)
        assert document == freeze(document, field="state", limits=Limits(max_bytes=20))

    def test_hard_maximum_depth_is_allowed(self) -> None:
        """max_depth may be 128, the hard maximum."""
        assert 128 == Limits(max_depth=128).max_depth

    @pytest.mark.parametrize(
        ("field", "value", "match"),
        [
            ("max_depth", 0, "max_depth must be a positive integer"),
            ("max_depth", -1, "max_depth must be a positive integer"),
            ("max_depth", 129, "max_depth must be at most 128"),
            ("max_depth", True, "max_depth must be a positive integer"),
            ("max_bytes", 0, "max_bytes must be a positive integer"),
            ("max_bytes", -5, "max_bytes must be a positive integer"),
            ("max_bytes", 1.5, "max_bytes must be a positive integer"),
            ("max_name_length", 0, "max_name_length must be a positive integer"),
            ("max_text_length", -1, "max_text_length must be a positive integer"),
        ],
    )
    def test_invalid_limits_raise_value_error(self, field: str, value: object, match: str) -> None:
        """A limit that is not a positive integer, or a depth over 128, raises ValueError."""
        with pytest.raises(ValueError, match=match):
            Limits(**{field: value})  # type: ignore[arg-type]


class TestSizeAccounting:
    """The size a frozen document remembers is its compact UTF-8 JSON encoding's size."""

    @settings(max_examples=100, deadline=None)
    @given(_DOCUMENTS.filter(lambda value: isinstance(value, (dict, list))))
    def test_size_matches_compact_json(self, value: object) -> None:
        """_size equals the length of json.dumps(..., separators=(",", ":")) in UTF-8."""
        frozen = freeze(value, field="state")
        assert isinstance(frozen, (JsonObject, JsonArray))
        assert compact_size(value) == frozen._size

    @pytest.mark.parametrize(
        "value",
        [
            {},
            [],
            [False],
            [True, None],
            {"a": "ü", "b": [1, 2.5, -0.0]},
            [[[]], {"k": {}}],
            {"text": "plain", "n": -9_007_199_254_740_991},
        ],
        ids=["empty-object", "empty-array", "false", "true-null", "mixed", "nested", "big-int"],
    )
    def test_size_limit_is_exact(self, value: object) -> None:
        """A document is accepted with max_bytes equal to its size and refused one byte below."""
        size = compact_size(value)
        assert value == freeze(value, field="state", limits=Limits(max_bytes=size))
        with pytest.raises(InvalidJobDataError, match=f"larger than {size - 1} bytes"):
            freeze(value, field="state", limits=Limits(max_bytes=size - 1))

    def test_size_of_an_example(self) -> None:
        """A hand-checked document has the size of its compact encoding."""
        frozen = frozen_object({"a": [1, -2.5, None, True, False], "é": "ü"})
        assert len('{"a":[1,-2.5,null,true,false],"é":"ü"}'.encode()) == frozen._size
