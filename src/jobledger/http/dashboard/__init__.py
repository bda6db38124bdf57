"""The web dashboard that ``jobledger serve`` shows under ``/dashboard``: runs, jobs, actions.

:func:`create_dashboard` makes the ASGI app that
:func:`jobledger.http.create_app` mounts; people sign in with a client's id
and secret. See ``docs/dashboard.md``.
"""

from __future__ import annotations

from jobledger.http.dashboard._pages import DEFAULT_SESSION_SECONDS, create_dashboard

__all__ = ["DEFAULT_SESSION_SECONDS", "create_dashboard"]
