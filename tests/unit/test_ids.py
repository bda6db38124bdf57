"""Specification of the default ids: UUIDv7 job ids in creation order, and unique tokens."""

from __future__ import annotations

import itertools
import os
import re
import sys
import threading
import time
import types
import uuid
from typing import TYPE_CHECKING

import pytest

from jobledger._application import defaults
from jobledger._application.defaults import new_id, new_tag

if TYPE_CHECKING:
    from collections.abc import Iterator


def milliseconds(value: str) -> int:
    """The Unix time in milliseconds that a UUIDv7 carries in its top 48 bits."""
    return uuid.UUID(value).int >> 80


@pytest.fixture
def frequent_switches() -> Iterator[None]:
    """Make the interpreter switch threads very often, so threads really interleave."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


class TestNewId:
    """new_id gives UUIDv7 strings that are unique and sort in creation order."""

    def test_a_uuid_version_7_string(self) -> None:
        """An id is a canonical lowercase UUID string of version 7 and the RFC variant."""
        value = new_id()
        parsed = uuid.UUID(value)
        assert (7, uuid.RFC_4122, value) == (parsed.version, parsed.variant, str(parsed))

    def test_it_carries_the_creation_time(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An id's timestamp is the time it was made, in milliseconds."""
        monkeypatch.setattr(defaults, "_source", defaults._Uuid7Source())
        before = time.time_ns() // 1_000_000
        value = new_id()
        after = time.time_ns() // 1_000_000
        assert before <= milliseconds(value)
        assert milliseconds(value) <= after

    def test_many_in_a_tight_loop_are_unique_and_increasing(self) -> None:
        """Ids made one after another are all different and sort in the order they were made."""
        values = [new_id() for _ in range(20_000)]
        assert (20_000, values) == (len(set(values)), sorted(values))
        assert {(7, uuid.RFC_4122)} == {
            (uuid.UUID(value).version, uuid.UUID(value).variant) for value in values
        }

    def test_order_holds_when_the_clock_goes_back(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """With a clock stuck in the past, ids still increase, past the counter's overflow."""
        monkeypatch.setattr(defaults, "_source", defaults._Uuid7Source())
        first = new_id()
        monkeypatch.setattr(defaults, "time", types.SimpleNamespace(time_ns=lambda: 0))
        values = [new_id() for _ in range(10_000)]
        assert (10_001, [first, *values]) == (len({first, *values}), sorted([first, *values]))
        assert milliseconds(values[-1]) > milliseconds(first)

    def test_a_forked_child_draws_its_own_random_bits(self) -> None:
        """A forked child never replays its parent's buffered random bits."""
        new_id()  # the parent now holds buffered random bytes
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report its ids and leave at once
            try:
                os.write(write_end, " ".join(new_id() for _ in range(50)).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            child = pipe.read().split()
        os.waitpid(pid, 0)
        parent = [new_id() for _ in range(50)]

        def random_bits(value: str) -> int:
            return uuid.UUID(value).int & ((1 << 62) - 1)

        assert 50 == len(child)
        assert set() == {random_bits(v) for v in child} & {random_bits(v) for v in parent}

    @pytest.mark.usefixtures("frequent_switches")
    def test_unique_across_threads(self) -> None:
        """Ids made by several threads at once are all different and increase in each thread."""
        per_thread = 3_000
        barrier = threading.Barrier(6)
        made: dict[int, list[str]] = {}

        def make(index: int) -> None:
            barrier.wait()
            made[index] = [new_id() for _ in range(per_thread)]

        threads = [threading.Thread(target=make, args=(index,)) for index in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        everything = [value for values in made.values() for value in values]
        owner = {value: index for index, values in made.items() for value in values}
        switches = sum(
            1
            for left, right in itertools.pairwise(sorted(everything))
            if owner[left] != owner[right]
        )
        assert 6 * per_thread == len(set(everything))
        assert dict.fromkeys(made, True) == {
            index: values == sorted(values) for index, values in made.items()
        }
        assert switches > 0


class TestNewTag:
    """new_tag gives the default ETags and event ids: never made twice, by any process."""

    def test_a_process_prefix_and_a_counter(self) -> None:
        """Tokens share this process's 16-hex-digit prefix and count up after it in hex."""
        first, second = new_tag(), new_tag()
        prefix, count = first.split("-")
        assert (True, f"{prefix}-{int(count, 16) + 1:x}") == (
            re.fullmatch("[0-9a-f]{16}", prefix) is not None,
            second,
        )

    def test_a_forked_child_draws_its_own_prefix(self) -> None:
        """A forked child's tokens never repeat its parent's: it draws a new prefix."""
        parent = new_tag()
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report a token and leave at once
            try:
                os.write(write_end, new_tag().encode())
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            child = pipe.read()
        os.waitpid(pid, 0)

        assert (True, True) == (
            child.split("-")[0] != parent.split("-")[0],
            re.fullmatch("[0-9a-f]{16}-[0-9a-f]+", child) is not None,
        )

    @pytest.mark.usefixtures("frequent_switches")
    def test_unique_across_threads(self) -> None:
        """Tokens made by several threads at once are all different."""
        per_thread = 3_000
        barrier = threading.Barrier(6)
        made: dict[int, list[str]] = {}

        def make(index: int) -> None:
            barrier.wait()
            made[index] = [new_tag() for _ in range(per_thread)]

        threads = [threading.Thread(target=make, args=(index,)) for index in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        everything = [value for values in made.values() for value in values]
        owner = {value: index for index, values in made.items() for value in values}
        in_order = sorted(everything, key=lambda value: int(value.split("-")[1], 16))
        switches = sum(
            1 for left, right in itertools.pairwise(in_order) if owner[left] != owner[right]
        )
        assert 6 * per_thread == len(set(everything))
        assert switches > 0
