"""Filtered subscriptions against the feed: each gets exactly the feed's events it matches.

A ledger makes a change's event only when a subscription's filter admits the
change's fields; the state machine subscribes and cancels filtered
subscriptions at random between commands and batches, and checks that each
received, in feed order and equal to the feed's own, every event committed
while it was subscribed that its filter matches, and nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

import attrs
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from jobledger import (
    ANY_ETAG,
    EVENT_TYPES,
    CancelJob,
    CompleteJob,
    EventFilter,
    FailJob,
    JobEvent,
    JobledgerError,
    Jobs,
    StartJob,
    Subscription,
    UpdateJob,
)

if TYPE_CHECKING:
    from jobledger import Command
    from jobledger._core.events import EventType

SERVICES = ("hr", "crm")
ENTITIES = ("employee", "account")
TYPES = ("sync", "export")
JOB_IDS = ("a", "b", "c", "dd", "ee")


@attrs.frozen
class JobsNamed(EventFilter):
    """The events of some jobs, by id, told through the ``admits`` hook."""

    ids: frozenset[str] = attrs.field(default=frozenset(), kw_only=True)

    def admits(  # noqa: PLR0917  (EventFilter.admits's signature)
        self,
        kind: EventType,
        job_id: str,
        service: str,
        entity: str,
        type: str,
        version: int,
        etag: str,
    ) -> bool:
        """Whether the job is one of :attr:`ids` and the fields pass the base filter."""
        return job_id in self.ids and super().admits(
            kind, job_id, service, entity, type, version, etag
        )


def _names(pool: tuple[str, ...]) -> st.SearchStrategy[frozenset[str] | None]:
    return st.none() | st.frozensets(st.sampled_from(pool))


_BASE_FIELDS = {
    "service": _names(SERVICES),
    "entity": _names(ENTITIES),
    "type": _names(TYPES),
    "events": st.none() | st.frozensets(st.sampled_from(EVENT_TYPES)),
}

FILTERS: st.SearchStrategy[EventFilter] = st.builds(EventFilter, **_BASE_FIELDS) | st.builds(
    JobsNamed, ids=st.frozensets(st.sampled_from(JOB_IDS)), **_BASE_FIELDS
)

_ENDS: dict[str, type[CompleteJob | FailJob | CancelJob]] = {
    "complete": CompleteJob,
    "fail": FailJob,
    "cancel": CancelJob,
}


@attrs.define
class _Watch:
    """A subscription, the feed head when it began, and where it ended (``None``: active)."""

    event_filter: EventFilter
    subscription: Subscription
    received: list[JobEvent]
    after: int
    until: int | None = None


class FilteredSubscriptions(RuleBasedStateMachine):
    """Commands and batches on a few jobs, with filtered subscriptions coming and going."""

    delivery: ClassVar[Literal["threads", "inline"]] = "inline"

    def __init__(self) -> None:
        """Begin with a ledger of its own (no publisher) and no subscription."""
        super().__init__()
        self.jobs = Jobs(delivery=self.delivery)
        self.watches: list[_Watch] = []

    @initialize(event_filter=FILTERS)
    def first_subscription(self, event_filter: EventFilter) -> None:
        """Begin with one filtered subscription (more may come)."""
        self.subscribe(event_filter)

    @rule(event_filter=FILTERS)
    def subscribe(self, event_filter: EventFilter) -> None:
        """Subscribe a handler with ``event_filter``."""
        self.jobs.drain()
        received: list[JobEvent] = []
        head = self.jobs.repository.feed_head()
        subscription = self.jobs.subscribe(received.append, event_filter)
        self.watches.append(_Watch(event_filter, subscription, received, head))

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        """Cancel an active subscription, if there is one."""
        active = [watch for watch in self.watches if watch.until is None]
        if not active:
            return
        watch = data.draw(st.sampled_from(active), label="subscription")
        self.jobs.drain()
        watch.subscription.cancel()
        watch.until = self.jobs.repository.feed_head()

    @rule(
        job_id=st.sampled_from(JOB_IDS),
        service=st.sampled_from(SERVICES),
        entity=st.sampled_from(ENTITIES),
        type_=st.sampled_from(TYPES),
    )
    def start(self, job_id: str, service: str, entity: str, type_: str) -> None:
        """Start a job (refused when its id is taken)."""
        self.send([StartJob(service=service, entity=entity, type=type_, job_id=job_id)])

    @rule(
        changes=st.lists(
            st.tuples(st.sampled_from(JOB_IDS), st.sampled_from(("update", "update", *_ENDS))),
            min_size=1,
            max_size=3,
        )
    )
    def change(self, changes: list[tuple[str, str]]) -> None:
        """Change jobs, one command alone or several as a batch (refused as a whole if one is)."""
        self.send([_change(job_id, kind) for job_id, kind in changes])

    def send(self, commands: list[Command]) -> None:
        """Send ``commands``: one alone through handle, several through handle_all."""
        try:
            if len(commands) == 1:
                self.jobs.handle(commands[0])
            else:
                self.jobs.handle_all(commands)
        except JobledgerError:
            pass  # a refusal writes nothing: nothing to receive

    @invariant()
    def each_subscription_got_what_it_matches(self) -> None:
        """Each subscription got the feed's events it matches, from its start to its cancel."""
        self.jobs.drain()
        feed = [entry.event for entry in self.jobs.repository.read_feed()]
        for watch in self.watches:
            window = feed[watch.after : watch.until]
            expected = [event for event in window if watch.event_filter.matches(event)]
            assert expected == watch.received

    def teardown(self) -> None:
        """Cancel every subscription (their threads end)."""
        for watch in self.watches:
            watch.subscription.cancel()


def _change(job_id: str, kind: str) -> Command:
    if kind == "update":
        return UpdateJob(job_id=job_id, etag=ANY_ETAG, state_update={"n": job_id})
    return _ENDS[kind](job_id=job_id, etag=ANY_ETAG)


class ThreadedFilteredSubscriptions(FilteredSubscriptions):
    """The same, with each subscription's handler on its own thread."""

    delivery = "threads"


TestInlineDelivery = FilteredSubscriptions.TestCase
TestInlineDelivery.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestThreadedDelivery = ThreadedFilteredSubscriptions.TestCase
TestThreadedDelivery.settings = settings(max_examples=30, stateful_step_count=30, deadline=None)
