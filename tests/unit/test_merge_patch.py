"""Specification of RFC 7396 JSON Merge Patch, as a function and as the ledger applies it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobledger import InvalidJobDataError, Jobs, JsonObject, freeze, merge_patch, thaw
from jobledger._core.jsondoc import encoded_size


def frozen(value: object) -> JsonObject:
    """Freeze ``value``, which must be an object."""
    result = freeze(value, field="state")
    assert isinstance(result, JsonObject)
    return result


# RFC 7396, Appendix A: every example, in the order the RFC gives them.
RFC_7396_APPENDIX_A = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


class TestMergePatch:
    """merge_patch applies RFC 7396 to frozen documents, sharing what it does not touch."""

    @pytest.mark.parametrize(
        ("target", "patch", "expected"),
        RFC_7396_APPENDIX_A,
        ids=[f"A{row}" for row in range(1, len(RFC_7396_APPENDIX_A) + 1)],
    )
    def test_rfc_7396_appendix_a(self, target: object, patch: object, expected: object) -> None:
        """Each example of RFC 7396 Appendix A gives the RFC's result."""
        result = merge_patch(freeze(target, field="state"), freeze(patch, field="state_update"))
        assert expected == result
        assert json.dumps(expected, sort_keys=True) == json.dumps(result, sort_keys=True)

    def test_rfc_7396_section_3_example(self) -> None:
        """The worked example of RFC 7396 section 3 gives the RFC's result."""
        target = {
            "title": "Goodbye!",
            "author": {"givenName": "John", "familyName": "Doe"},
            "tags": ["example", "sample"],
            "content": "This will be unchanged",
        }
        patch = {
            "title": "Hello!",
            "phoneNumber": "+01-123-456-7890",
            "author": {"familyName": None},
            "tags": ["example"],
        }
        assert {
            "title": "Hello!",
            "author": {"givenName": "John"},
            "tags": ["example"],
            "content": "This will be unchanged",
            "phoneNumber": "+01-123-456-7890",
        } == merge_patch(frozen(target), frozen(patch))

    def test_results_are_frozen_all_the_way_down(self) -> None:
        """The result and the objects it builds are read-only JsonObjects."""
        result = merge_patch(frozen({}), frozen({"a": {"bb": {"ccc": None}}}))
        assert isinstance(result, JsonObject)
        inner = result["a"]
        assert isinstance(inner, JsonObject)
        assert isinstance(inner["bb"], JsonObject)

    def test_untouched_subtrees_are_shared(self) -> None:
        """A member the patch does not touch is the very same object in the result."""
        target = frozen({"big": {"rows": list(range(100))}, "other": [1, 2], "n": 1})
        result = merge_patch(target, frozen({"n": 2}))
        assert isinstance(result, JsonObject)
        assert target["big"] is result["big"]
        assert target["other"] is result["other"]
        assert 2 == result["n"]

    def test_untouched_siblings_of_a_patched_path_are_shared(self) -> None:
        """Along a patched path, the untouched siblings are shared too."""
        target = frozen({"a": {"keep": {"x": 1}, "change": 1}})
        result = merge_patch(target, frozen({"a": {"change": 2}}))
        assert isinstance(result, JsonObject)
        before = target["a"]
        after = result["a"]
        assert isinstance(before, JsonObject)
        assert isinstance(after, JsonObject)
        assert before["keep"] is after["keep"]
        assert {"keep": {"x": 1}, "change": 2} == after

    def test_neither_input_changes(self) -> None:
        """Applying a patch leaves both the target and the patch exactly as they were."""
        target = frozen({"a": {"b": 1, "c": [1]}, "d": "e"})
        patch = frozen({"a": {"b": None, "x": 2}, "d": None, "f": [3]})
        target_before, patch_before = thaw(target), thaw(patch)
        merge_patch(target, patch)
        assert (target_before, patch_before) == (thaw(target), thaw(patch))

    def test_a_null_in_a_new_subtree_is_dropped(self) -> None:
        """Nulls in a patch never appear in the result, even where the target had nothing."""
        assert {"a": {"b": {}}} == merge_patch(frozen({}), frozen({"a": {"b": {"c": None}}}))

    @settings(max_examples=60, deadline=None)
    @given(
        st.dictionaries(st.sampled_from("abc"), st.integers(0, 9) | st.none(), max_size=3),
        st.dictionaries(st.sampled_from("abc"), st.integers(0, 9) | st.none(), max_size=3),
    )
    def test_result_size_matches_its_encoding(
        self, target: dict[str, int | None], patch: dict[str, int | None]
    ) -> None:
        """The size a merge result remembers is that of its compact JSON encoding."""
        result = merge_patch(frozen(target), frozen({"nested": patch, **patch}))
        assert isinstance(result, JsonObject)
        encoded = json.dumps(result, ensure_ascii=False, separators=(",", ":")).encode()
        assert len(encoded) == result._size


class TestFlatMergePatch:
    """A flat patch with no null onto a flat state: the usual patch, merged on a short path."""

    @pytest.mark.parametrize(
        ("target", "patch", "expected"),
        [
            ({"done": 9}, {"done": 10}, {"done": 10}),
            (
                {"done": 10, "of": 12},
                {"done": 9.5, "note": "é"},
                {"done": 9.5, "of": 12, "note": "é"},
            ),
            (
                {"ключ": "a", "b": True},
                {"ключ": False, "c": "xyz"},
                {"ключ": False, "b": True, "c": "xyz"},
            ),
            ({}, {"a": 1}, {"a": 1}),
            ({"a": 1}, {}, {"a": 1}),
        ],
    )
    def test_the_merged_state_knows_its_compact_json_size(
        self, target: dict[str, object], patch: dict[str, object], expected: dict[str, object]
    ) -> None:
        """The result is the RFC's, and its remembered size is its compact UTF-8 JSON length."""
        merged = merge_patch(frozen(target), frozen(patch))
        compact = json.dumps(expected, ensure_ascii=False, separators=(",", ":")).encode()
        assert (expected, len(compact), JsonObject) == (merged, encoded_size(merged), type(merged))

    def test_the_target_and_the_patch_are_left_as_they_were(self) -> None:
        """Merging shares nothing mutable: the target and the patch read as before."""
        target, patch = frozen({"done": 1, "of": 2}), frozen({"done": 2})
        merged = merge_patch(target, patch)
        assert ({"done": 1, "of": 2}, {"done": 2}, {"done": 2, "of": 2}) == (target, patch, merged)


class TestLedgerMergePatch:
    """The ledger applies state_update as a merge patch and keeps the state an object."""

    def test_update_merges_into_the_state(self, jobs: Jobs) -> None:
        """An update's state_update is merged into the job's state."""
        job = jobs.start(service="hr", entity="employee", type="sync", state={"a": 1, "b": 2})
        job = jobs.update(job.id, etag=job.etag, state_update={"a": None, "c": {"d": 3}})
        assert {"b": 2, "c": {"d": 3}} == job.state

    @pytest.mark.parametrize(
        "patch",
        [["a"], "text", 5, 2.5, True, []],
        ids=["array", "string", "integer", "float", "boolean", "empty-array"],
    )
    def test_a_non_object_patch_is_refused(self, jobs: Jobs, patch: object) -> None:
        """A state_update that is not an object is refused and the job stays as it was."""
        job = jobs.start(service="hr", entity="employee", type="sync", state={"a": 1})
        head = jobs.repository.feed_head()
        with pytest.raises(InvalidJobDataError) as caught:
            jobs.update(job.id, etag=job.etag, state_update=patch)
        assert ("state_update", "") == (caught.value.field, caught.value.path)
        assert "must be a JSON object" in caught.value.reason
        assert job == jobs.get(job.id)
        assert () == tuple(jobs.updates(job.id))
        assert head == jobs.repository.feed_head()

    @pytest.mark.parametrize("command", ["complete", "fail"])
    def test_final_commands_refuse_a_non_object_patch(self, jobs: Jobs, command: str) -> None:
        """Completing and failing refuse a non-object state_update and leave the job active."""
        job = jobs.start(service="hr", entity="employee", type="sync")
        with pytest.raises(InvalidJobDataError) as caught:
            getattr(jobs, command)(job.id, etag=job.etag, state_update=[1])
        assert "state_update" == caught.value.field
        assert job == jobs.get(job.id)
