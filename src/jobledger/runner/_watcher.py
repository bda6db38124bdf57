"""The watcher: one thread that keeps a runner's drives' leases and reads their runs when due.

A drive's own thread does this while it waits for its tasks; the watcher does
it while the driving thread runs a task itself (see
:class:`~jobledger.runner._driver.Driver`).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Final, Protocol

__all__ = ["Watched", "Watcher"]

#: The longest the watcher sleeps without looking at its drives again.
_WATCHER_NAP: Final = 1.0


class Watched(Protocol):
    """What the watcher needs of a drive."""

    def due(self) -> float:
        """When (``time.monotonic``) the drive's next read of its run or renewal is due."""
        ...

    def look_after(self) -> None:
        """Read the run, renew the lease and pass on a stop, when due."""
        ...


class Watcher:
    """A thread that looks after drives: reads their runs and renews their leases when due.

    A drive's own thread does this while it waits for its tasks, but not while
    it runs a task itself (a one-task step): the watcher does it then, and
    passes a cancel request, an end by someone else or a takeover on to the
    task. One watcher serves all the drives of a runner; its thread starts with
    the first drive and ends ``linger`` seconds after the last one ended (at
    once on :meth:`close`), so a runner that invokes runs one after the other
    starts it once.

    Args:
        linger: Seconds the thread waits for another drive before it ends.
    """

    def __init__(self, linger: float = 5.0) -> None:
        self.linger = linger
        self._lock = threading.Lock()
        self._drives: list[Watched] = []
        self._poke = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def watch(self, driver: Watched) -> None:
        """Look after ``driver`` until :meth:`forget`; start the thread if need be."""
        with self._lock:
            if self._pid != os.getpid():
                # A forked child: the parent's thread stayed behind.
                self._pid, self._thread = os.getpid(), None
            self._drives.append(driver)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="jobledger-runner-watcher", daemon=True
                )
                self._thread.start()
        self._poke.set()  # its times count from now

    def forget(self, driver: Watched) -> None:
        """Stop looking after ``driver``."""
        with self._lock:
            if driver in self._drives:
                self._drives.remove(driver)
        if self.linger <= 0:
            self._poke.set()

    def poke(self) -> None:
        """Look after the drives now (one of them was told its run changed)."""
        self._poke.set()

    def close(self) -> None:
        """End the thread once no drive is left: now, waiting for it, if none is."""
        with self._lock:
            self.linger = 0.0
            thread = None if self._drives else self._thread
        self._poke.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        idle_since: float | None = None
        while True:
            now = time.monotonic()
            with self._lock:
                if self._drives:
                    idle_since = None
                elif idle_since is None:
                    idle_since = now
                if idle_since is not None and now - idle_since >= self.linger:
                    self._thread = None
                    return
                wait = self._next_wake(now)
            self._poke.wait(min(max(wait, 0.0), _WATCHER_NAP))
            self._poke.clear()
            self._look_after_all()

    def _next_wake(self, now: float) -> float:
        """Seconds until a drive needs looking after (called under the lock)."""
        if not self._drives:
            return self.linger
        return min(driver.due() for driver in self._drives) - now

    def _look_after_all(self) -> None:
        # The drives are held only here: a drive forgotten is not kept alive by the thread.
        with self._lock:
            drives = tuple(self._drives)
        for driver in drives:
            driver.look_after()
