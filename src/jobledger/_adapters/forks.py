"""How many times this process was forked: what a process made before a fork belongs to its parent.

An adapter notes :func:`forks` when it opens connections; a different count
later means it now runs in a forked child, whose copies of those connections
share their sockets with the parent's and must be dropped, never used or
closed. Comparing a counter costs less than calling ``os.getpid()``.
"""

from __future__ import annotations

import os
import threading

__all__ = ["after_fork_lock", "forks"]

# The count (its ancestors' forks included), and a lock made anew in each child.
_FORKS = [0]
_LOCKS = [threading.Lock()]


def forks() -> int:
    """How many times this process and its ancestors were forked."""
    return _FORKS[0]


def after_fork_lock() -> threading.Lock:
    """A lock of this process alone (never one a parent's thread held when it forked)."""
    return _LOCKS[0]


def _forked() -> None:
    _FORKS[0] += 1
    _LOCKS[0] = threading.Lock()


os.register_at_fork(after_in_child=_forked)
