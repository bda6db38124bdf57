"""The five command methods by keyword, written once for every ledger that handles commands.

:class:`~jobledger.Jobs` and :class:`~jobledger.http.JobsClient` both build the
same commands from the same keywords; each inherits them from here and
supplies :meth:`JobCommands.handle`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobledger._core.commands import (
    CancelJob,
    FailJob,
    StartJob,
    complete_job,
    update_job,
)

if TYPE_CHECKING:
    from jobledger._core.commands import Command
    from jobledger._core.job import Job

__all__ = ["JobCommands"]


class JobCommands:
    """``start``, ``update``, ``complete``, ``fail`` and ``cancel``: build the command, handle it.

    The commands of every job's life (update, complete) are built with their
    positional constructors (:func:`~jobledger._core.commands.update_job`),
    which give the very value their classes' keyword constructors give.

    A subclass gives :meth:`handle`, and may override :meth:`_json` to check
    and freeze the JSON fields before the command is built (the ledger does,
    under its own limits).
    """

    __slots__ = ()

    def handle(self, command: Command) -> Job:
        """Carry out ``command``; return the job as it left it."""
        raise NotImplementedError

    def _json(self, value: object, field: str) -> object:  # noqa: ARG002  (a subclass's hook)
        """``value`` as the command receives it (the command freezes it under the hard caps)."""
        return value

    def start(
        self,
        *,
        service: str,
        entity: str,
        type: str,
        display_name: str = "",
        description: str = "",
        input: object = None,
        state: object = None,
        job_id: str | None = None,
        request_id: str | None = None,
        actor: str | None = None,
    ) -> Job:
        """Start a job; see :class:`~jobledger.StartJob` for the fields.

        ``input`` and ``state`` default to ``{}``.
        """
        return self.handle(
            StartJob(
                service=service,
                entity=entity,
                type=type,
                display_name=display_name,
                description=description,
                input=self._json(input, "input"),
                state=self._json(state, "state"),
                job_id=job_id,
                request_id=request_id,
                actor=actor,
            )
        )

    def update(
        self,
        job_id: str,
        *,
        etag: str,
        status: str | None = None,
        display_name: str | None = None,
        description: str | None = None,
        state_update: object = None,
        request_id: str | None = None,
        actor: str | None = None,
    ) -> Job:
        """Update an active job; see :class:`~jobledger.UpdateJob` for the fields."""
        return self.handle(
            update_job(
                job_id,
                etag,
                status,
                display_name,
                description,
                self._json(state_update, "state_update"),
                request_id,
                actor,
            )
        )

    def complete(
        self,
        job_id: str,
        *,
        etag: str,
        display_name: str | None = None,
        description: str | None = None,
        state_update: object = None,
        request_id: str | None = None,
        actor: str | None = None,
    ) -> Job:
        """Complete an active job; see :class:`~jobledger.CompleteJob`."""
        return self.handle(
            complete_job(
                job_id,
                etag,
                display_name,
                description,
                self._json(state_update, "state_update"),
                request_id,
                actor,
            )
        )

    def fail(
        self,
        job_id: str,
        *,
        etag: str,
        display_name: str | None = None,
        description: str | None = None,
        state_update: object = None,
        request_id: str | None = None,
        actor: str | None = None,
    ) -> Job:
        """Fail an active job; see :class:`~jobledger.FailJob`."""
        return self.handle(
            FailJob(
                job_id=job_id,
                etag=etag,
                display_name=display_name,
                description=description,
                state_update=self._json(state_update, "state_update"),
                request_id=request_id,
                actor=actor,
            )
        )

    def cancel(
        self,
        job_id: str,
        *,
        etag: str,
        display_name: str | None = None,
        description: str | None = None,
        request_id: str | None = None,
        actor: str | None = None,
    ) -> Job:
        """Cancel an active job; see :class:`~jobledger.CancelJob`."""
        return self.handle(
            CancelJob(
                job_id=job_id,
                etag=etag,
                display_name=display_name,
                description=description,
                request_id=request_id,
                actor=actor,
            )
        )
