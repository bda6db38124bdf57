"""Properties of the JSON rules: freezing, RFC 7396 merge patches and size accounting."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobledger import InvalidJobDataError, JsonArray, JsonObject, Limits, freeze, merge_patch
from jobledger.testing import strategies as jst


def exact(value: object) -> str:
    """JSON text that tells ``1``, ``1.0`` and ``true`` apart, unlike ``==``."""
    return json.dumps(value)


def compact_size(value: object) -> int:
    """The length of ``value`` as compact UTF-8 JSON."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def needs_no_escapes(value: object) -> bool:
    """Whether no string in ``value`` holds a quote, a backslash or a control character."""
    # Every JSON escape starts with a backslash, and a backslash itself is escaped.
    return "\\" not in json.dumps(value, ensure_ascii=False)


def containers(value: object) -> list[object]:
    """Every object and array in ``value``, itself included."""
    found: list[object] = []
    pending = [value]
    while pending:
        current = pending.pop()
        if isinstance(current, dict):
            found.append(current)
            pending.extend(current.values())
        elif isinstance(current, list):
            found.append(current)
            pending.extend(current)
    return found


def reference_merge_patch(target: Any, patch: Any) -> Any:  # noqa: ANN401  (plain JSON)
    """RFC 7396, section 2, as written there, on plain values."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = reference_merge_patch(result.get(key), value)
    return result


def without_null_members(value: Any) -> Any:  # noqa: ANN401  (plain JSON)
    """``value`` with every null object member removed, through objects only."""
    if not isinstance(value, dict):
        return value
    return {
        key: without_null_members(member) for key, member in value.items() if member is not None
    }


def nesting(value: object) -> int:
    """How deeply ``value`` nests: 0 for a scalar, 1 more than its deepest member otherwise."""
    if isinstance(value, dict):
        return 1 + max(map(nesting, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(nesting, value), default=0)
    return 0


def null_members(value: object, path: str = "") -> list[str]:
    """The paths of the null object members reachable from ``value`` through objects."""
    if not isinstance(value, dict):
        return []
    found = []
    for key, member in value.items():
        if member is None:
            found.append(f"{path}/{key}")
        found.extend(null_members(member, f"{path}/{key}"))
    return found


UNESCAPED_VALUES = jst.json_values().filter(needs_no_escapes)


class TestFreeze:
    """freeze: checks a JSON value and returns it read-only."""

    @given(jst.json_values())
    def test_accepts_every_json_value_and_returns_an_equal_one(self, value: object) -> None:
        """Freezing any JSON value returns a value with the same JSON text."""
        frozen = freeze(value, field="state")
        assert exact(value) == exact(frozen)
        assert value == frozen

    @given(jst.json_values())
    def test_every_container_of_a_frozen_value_refuses_changes(self, value: object) -> None:
        """Every object and array in a frozen value is read-only, all the way down."""
        for container in containers(freeze(value, field="state")):
            assert isinstance(container, (JsonObject, JsonArray))
            with pytest.raises(TypeError, match="read-only"):
                container.clear()

    @given(jst.json_values())
    def test_a_frozen_value_shares_nothing_with_what_was_frozen(self, value: object) -> None:
        """Emptying every container of the original leaves the frozen value as it was."""
        expected = exact(value)
        frozen = freeze(value, field="state")
        for container in containers(value):
            container.clear()  # type: ignore[attr-defined]  # plain dicts and lists
        assert expected == exact(frozen)

    @given(jst.json_values())
    def test_freezing_a_frozen_value_changes_nothing(self, value: object) -> None:
        """freeze(freeze(x)) has the JSON text of x."""
        again = freeze(freeze(value, field="state"), field="state")
        assert exact(value) == exact(again)

    @given(jst.hostile_json())
    def test_refuses_every_value_that_is_not_strict_json(self, value: object) -> None:
        """NaN, huge integers, lone surrogates, NUL, bad keys and non-JSON types are refused."""
        with pytest.raises(InvalidJobDataError) as refused:
            freeze(value, field="state")
        assert "state" == refused.value.field


class TestMergePatch:
    """merge_patch: RFC 7396 JSON Merge Patch over frozen values."""

    @given(jst.json_values(), st.one_of(jst.merge_patches(), jst.json_values()))
    def test_agrees_with_the_algorithm_of_rfc_7396(self, target: object, patch: object) -> None:
        """merge_patch gives exactly what the RFC's own algorithm gives."""
        merged = merge_patch(freeze(target, field="state"), freeze(patch, field="state_update"))
        assert exact(reference_merge_patch(target, patch)) == exact(merged)

    @given(jst.json_values(), st.one_of(jst.merge_patches(), jst.json_values()))
    def test_applying_a_patch_twice_is_applying_it_once(
        self, target: object, patch: object
    ) -> None:
        """A merge patch is idempotent: a second application changes nothing."""
        frozen_patch = freeze(patch, field="state_update")
        once = merge_patch(freeze(target, field="state"), frozen_patch)
        assert exact(once) == exact(merge_patch(once, frozen_patch))

    @given(jst.merge_patches(), st.sampled_from([{}, None, [], "text", 1]))
    def test_a_patch_applied_to_no_object_is_the_patch_without_nulls(
        self, patch: dict[str, Any], target: object
    ) -> None:
        """Applied to {} or to a non-object, a patch gives itself with its null members removed."""
        merged = merge_patch(freeze(target, field="state"), freeze(patch, field="state_update"))
        assert exact(without_null_members(patch)) == exact(merged)

    @given(jst.json_objects(), jst.merge_patches())
    def test_a_patch_introduces_no_null_member(
        self, target: dict[str, Any], patch: dict[str, Any]
    ) -> None:
        """Applied to an object without null members, a patch leaves none."""
        clean = freeze(without_null_members(target), field="state")
        merged = merge_patch(clean, freeze(patch, field="state_update"))
        assert [] == null_members(merged)

    @given(jst.json_objects(), jst.merge_patches())
    def test_leaves_the_target_and_the_patch_as_they_were(
        self, target: dict[str, Any], patch: dict[str, Any]
    ) -> None:
        """Neither the target nor the patch changes."""
        frozen_target = freeze(target, field="state")
        frozen_patch = freeze(patch, field="state_update")
        merge_patch(frozen_target, frozen_patch)
        assert (exact(target), exact(patch)) == (exact(frozen_target), exact(frozen_patch))


class TestSizeAccounting:
    """The size the limits count: compact UTF-8 JSON, escapes aside."""

    @given(UNESCAPED_VALUES)
    def test_a_document_fits_exactly_its_compact_json_length(self, value: object) -> None:
        """A document fits max_bytes of its compact length, and not one byte less."""
        size = compact_size(value)
        assert exact(value) == exact(freeze(value, field="state", limits=Limits(max_bytes=size)))
        if size > 1:
            with pytest.raises(InvalidJobDataError, match="larger than"):
                freeze(value, field="state", limits=Limits(max_bytes=size - 1))

    @given(UNESCAPED_VALUES)
    def test_a_frozen_document_remembers_its_compact_json_length(self, value: object) -> None:
        """Every container of a frozen document knows its own compact JSON length."""
        for container in containers(freeze(value, field="state")):
            assert compact_size(container) == container._size  # type: ignore[attr-defined]

    @given(
        jst.json_objects().filter(needs_no_escapes), jst.merge_patches().filter(needs_no_escapes)
    )
    def test_a_merged_state_counts_its_compact_json_length(
        self, target: dict[str, Any], patch: dict[str, Any]
    ) -> None:
        """The result of a merge patch fits max_bytes of its compact length, and not one less."""
        merged = merge_patch(freeze(target, field="state"), freeze(patch, field="state_update"))
        size = compact_size(merged)
        assert exact(merged) == exact(freeze(merged, field="state", limits=Limits(max_bytes=size)))
        with pytest.raises(InvalidJobDataError, match="larger than"):
            freeze(merged, field="state", limits=Limits(max_bytes=size - 1))

    @given(
        jst.json_objects().filter(needs_no_escapes), jst.merge_patches().filter(needs_no_escapes)
    )
    def test_every_container_of_a_merged_state_knows_its_size_and_depth(
        self, target: dict[str, Any], patch: dict[str, Any]
    ) -> None:
        """Each container a merge patch builds or shares remembers its own length and depth."""
        merged = merge_patch(freeze(target, field="state"), freeze(patch, field="state_update"))
        for container in containers(merged):
            assert (compact_size(container), nesting(container)) == (
                container._size,  # type: ignore[attr-defined]
                container._depth,  # type: ignore[attr-defined]
            )
