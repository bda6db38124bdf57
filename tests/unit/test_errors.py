"""Specification of jobledger's error tree: its shape, facts, messages and pickling."""

from __future__ import annotations

import pickle

import pytest

from jobledger import (
    ConcurrencyError,
    InvalidJobDataError,
    InvalidTransitionError,
    JobAlreadyExistsError,
    JobledgerError,
    JobNotFoundError,
    RequestIdConflictError,
    WireFormatError,
)

#: An error, the facts it carries as attributes, and words its message must contain.
Example = tuple[JobledgerError, dict[str, str], list[str]]

EXAMPLES: list[Example] = [
    (JobNotFoundError("job-1"), {"job_id": "job-1"}, ["job-1"]),
    (JobAlreadyExistsError("job-1"), {"job_id": "job-1"}, ["job-1", "request_id"]),
    (
        ConcurrencyError("job-1", "etag-old", "etag-new"),
        {"job_id": "job-1", "expected_etag": "etag-old", "current_etag": "etag-new"},
        ["job-1", "etag-old", "etag-new"],
    ),
    (
        InvalidTransitionError("job-1", "completed", "update"),
        {"job_id": "job-1", "phase": "completed", "command": "update"},
        ["job-1", "completed", "update"],
    ),
    (
        InvalidJobDataError("state", "/a/0", "nan is not a JSON number"),
        {"field": "state", "path": "/a/0", "reason": "nan is not a JSON number"},
        ["state", "/a/0", "nan is not a JSON number"],
    ),
    (
        WireFormatError("UpdateJob", "/JobId", "is missing"),
        {"field": "UpdateJob", "path": "/JobId", "reason": "is missing"},
        ["UpdateJob", "/JobId", "is missing"],
    ),
    (RequestIdConflictError("msg-42"), {"request_id": "msg-42"}, ["msg-42"]),
]
IDS = [type(error).__name__ for error, _, _ in EXAMPLES]


class TestErrors:
    """Each error sits in one tree, carries its facts, says them, and survives pickling."""

    @pytest.mark.parametrize(
        ("error_type", "bases"),
        [
            (JobledgerError, (Exception,)),
            (JobNotFoundError, (JobledgerError, LookupError)),
            (JobAlreadyExistsError, (JobledgerError, ValueError)),
            (ConcurrencyError, (JobledgerError,)),
            (InvalidTransitionError, (JobledgerError,)),
            (InvalidJobDataError, (JobledgerError, ValueError)),
            (WireFormatError, (InvalidJobDataError, JobledgerError, ValueError)),
            (RequestIdConflictError, (JobledgerError, ValueError)),
        ],
    )
    def test_the_tree(self, error_type: type[Exception], bases: tuple[type, ...]) -> None:
        """Each error subclasses its parent in the tree and the builtin it resembles."""
        assert [True] * len(bases) == [issubclass(error_type, base) for base in bases]

    @pytest.mark.parametrize(
        ("error_type", "builtin"),
        [
            (ConcurrencyError, ValueError),
            (ConcurrencyError, LookupError),
            (InvalidTransitionError, ValueError),
            (JobNotFoundError, ValueError),
            (JobAlreadyExistsError, LookupError),
        ],
    )
    def test_builtins_it_does_not_resemble(
        self, error_type: type[Exception], builtin: type[Exception]
    ) -> None:
        """An error is not caught by a builtin it does not resemble."""
        assert not issubclass(error_type, builtin)

    @pytest.mark.parametrize("example", EXAMPLES, ids=IDS)
    def test_facts_are_attributes(self, example: Example) -> None:
        """The facts a caller needs are attributes of the error."""
        error, facts, _ = example
        assert facts == {name: getattr(error, name) for name in facts}

    @pytest.mark.parametrize("example", EXAMPLES, ids=IDS)
    def test_messages_mention_the_facts(self, example: Example) -> None:
        """The message names every fact a person needs to act."""
        error, _, words = example
        message = str(error)
        assert dict.fromkeys(words, True) == {word: word in message for word in words}

    @pytest.mark.parametrize("example", EXAMPLES, ids=IDS)
    @pytest.mark.parametrize("protocol", [0, pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL])
    def test_pickling_round_trips(self, example: Example, protocol: int) -> None:
        """A pickled error loads back as the same type with the same facts and message."""
        error, facts, _ = example
        loaded = pickle.loads(pickle.dumps(error, protocol=protocol))  # noqa: S301  (our own bytes)
        assert (type(error), str(error), error.args) == (type(loaded), str(loaded), loaded.args)
        assert facts == {name: getattr(loaded, name) for name in facts}

    def test_invalid_data_message_without_a_path(self) -> None:
        """An error about a whole value leaves the path out of the message."""
        error = InvalidJobDataError("service", "", "must not be empty")
        assert "invalid service: must not be empty" == str(error)

    def test_invalid_data_message_with_a_path(self) -> None:
        """An error inside a document names the field and the JSON Pointer."""
        error = InvalidJobDataError("state", "/a~1b", "bad")
        assert "invalid state at /a~1b: bad" == str(error)

    @pytest.mark.parametrize("example", EXAMPLES, ids=IDS)
    def test_every_error_is_a_jobledger_error(self, example: Example) -> None:
        """One except clause for JobledgerError catches each of them, unchanged."""
        error, _, _ = example
        with pytest.raises(JobledgerError) as caught:
            raise error
        assert error is caught.value
