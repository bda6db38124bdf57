"""jobledger: a ledger and a runner for long-running jobs that services cooperate on.

Start with :class:`Jobs`; everything it takes and returns is importable from here.
"""

from __future__ import annotations

import logging
from importlib.metadata import version as _version

from jobledger._adapters.memory import InMemoryRepository
from jobledger._application.delivery import Handler, InProcessPublisher, Subscription
from jobledger._application.jobs import Jobs
from jobledger._application.subscriber import DurableSubscriber
from jobledger._core.commands import (
    ANY_ETAG,
    CancelJob,
    ChangeCommand,
    Command,
    CompleteJob,
    FailJob,
    StartJob,
    UpdateJob,
)
from jobledger._core.decide import Change, RequestRecord
from jobledger._core.errors import (
    ConcurrencyError,
    ForeignDatabaseError,
    InvalidJobDataError,
    InvalidTransitionError,
    JobAlreadyExistsError,
    JobledgerError,
    JobNotFoundError,
    RequestIdConflictError,
    SchemaUpgradeError,
    SchemaVersionError,
    StorageConfigurationError,
    StorageError,
    StorageTimeoutError,
    StorageUnavailableError,
    WireFormatError,
)
from jobledger._core.events import (
    EVENT_TYPES,
    EventFilter,
    JobCanceled,
    JobChanged,
    JobCompleted,
    JobEvent,
    JobFailed,
    JobStarted,
    JobUpdated,
)
from jobledger._core.job import Job, JobPhase, JobStatus, JobUpdate, UpdateType
from jobledger._core.jsondoc import (
    DEFAULT_LIMITS,
    JsonArray,
    JsonObject,
    JsonValue,
    Limits,
    freeze,
    merge_patch,
    thaw,
)
from jobledger._core.lifecycle import TRANSITIONS, CommandKind, lifecycle_mermaid
from jobledger._core.parked import ParkedEvent
from jobledger._core.query import GetJobById, JobPage, JobQuery
from jobledger._ports import (
    AtomicBatches,
    ConsumerLeases,
    EventPublisher,
    FeedEntry,
    FeedNotifier,
    ParkedEvents,
    Repository,
    Retention,
    StartRecords,
)

__all__ = [
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

__version__ = _version("jobledger")

logging.getLogger(__name__).addHandler(logging.NullHandler())
