"""Specification of jobledger's public surface: exactly these names, importable, documented."""

from __future__ import annotations

import inspect
import logging
from importlib.metadata import version

import pytest

import jobledger

#: DESIGN.md's contract: ``import jobledger`` gives at least these.
CONTRACT = {
    "Jobs",
    "Job",
    "JobUpdate",
    "UpdateType",
    "JobStatus",
    "StartJob",
    "UpdateJob",
    "CompleteJob",
    "FailJob",
    "CancelJob",
    "JobStarted",
    "JobUpdated",
    "JobCompleted",
    "JobFailed",
    "JobCanceled",
    "EventFilter",
    "Repository",
    "EventPublisher",
    "InMemoryRepository",
    "JobledgerError",
    "JobNotFoundError",
    "ConcurrencyError",
    "InvalidTransitionError",
    "InvalidJobDataError",
}

#: Every public name, the contract's and the additions, in ruff's sort order.
PUBLIC = [
    "ANY_ETAG",
    "DEFAULT_LIMITS",
    "EVENT_TYPES",
    "TRANSITIONS",
    "AtomicBatches",
    "CancelJob",
    "Change",
    "ChangeCommand",
    "Command",
    "CommandKind",
    "CompleteJob",
    "ConcurrencyError",
    "ConsumerLeases",
    "DurableSubscriber",
    "EventFilter",
    "EventPublisher",
    "FailJob",
    "FeedEntry",
    "FeedNotifier",
    "ForeignDatabaseError",
    "GetJobById",
    "Handler",
    "InMemoryRepository",
    "InProcessPublisher",
    "InvalidJobDataError",
    "InvalidTransitionError",
    "Job",
    "JobAlreadyExistsError",
    "JobCanceled",
    "JobChanged",
    "JobCompleted",
    "JobEvent",
    "JobFailed",
    "JobNotFoundError",
    "JobPage",
    "JobPhase",
    "JobQuery",
    "JobStarted",
    "JobStatus",
    "JobUpdate",
    "JobUpdated",
    "JobledgerError",
    "Jobs",
    "JsonArray",
    "JsonObject",
    "JsonValue",
    "Limits",
    "ParkedEvent",
    "ParkedEvents",
    "Repository",
    "RequestIdConflictError",
    "RequestRecord",
    "Retention",
    "SchemaUpgradeError",
    "SchemaVersionError",
    "StartJob",
    "StartRecords",
    "StorageConfigurationError",
    "StorageError",
    "StorageTimeoutError",
    "StorageUnavailableError",
    "Subscription",
    "UpdateJob",
    "UpdateType",
    "WireFormatError",
    "freeze",
    "lifecycle_mermaid",
    "merge_patch",
    "thaw",
]


class TestPublicApi:
    """The package exports exactly its public names, each importable and documented."""

    def test_all_is_exactly_the_public_names(self) -> None:
        """__all__ lists exactly the public names, in sorted order, without repeats."""
        assert PUBLIC == list(jobledger.__all__)

    def test_the_contract_is_covered(self) -> None:
        """Every name DESIGN.md promises is public."""
        assert set() == CONTRACT - set(jobledger.__all__)

    @pytest.mark.parametrize("name", PUBLIC)
    def test_every_name_is_importable(self, name: str) -> None:
        """Each public name is an attribute of the package, so `from jobledger import` works."""
        namespace: dict[str, object] = {}
        exec(f"from jobledger import {name}", namespace)  # noqa: S102  (the import statement is the behaviour under test)
        assert getattr(jobledger, name) is namespace[name]

    def test_star_import_gives_the_public_names(self) -> None:
        """`from jobledger import *` binds exactly the public names."""
        namespace: dict[str, object] = {}
        exec("from jobledger import *", namespace)  # noqa: S102  (the import statement is the behaviour under test)
        assert set(PUBLIC) == set(namespace) - {"__builtins__"}

    @pytest.mark.parametrize("name", PUBLIC)
    def test_classes_and_functions_are_documented(self, name: str) -> None:
        """Each public class and function has its own docstring and lives in jobledger."""
        value = getattr(jobledger, name)
        if not (inspect.isclass(value) or inspect.isfunction(value)):
            return
        assert value.__module__.startswith("jobledger.")
        assert inspect.getdoc(value)
        assert value.__doc__ is not None
        assert value.__doc__.strip()

    def test_version_comes_from_package_metadata(self) -> None:
        """__version__ is the installed distribution's version string."""
        assert isinstance(jobledger.__version__, str)
        assert version("jobledger") == jobledger.__version__

    def test_the_library_logger_has_a_null_handler(self) -> None:
        """The jobledger logger has a NullHandler, so the library never prints by itself."""
        handlers = logging.getLogger("jobledger").handlers
        assert [True] == [isinstance(handler, logging.NullHandler) for handler in handlers]
