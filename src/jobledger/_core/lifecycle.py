"""The job lifecycle as an explicit table, and the rule that enforces it.

:data:`TRANSITIONS` maps (phase, command kind) to the phase that follows; a
pair that is not in it is refused with :class:`~jobledger.InvalidTransitionError`.
:func:`lifecycle_mermaid` draws the table, so the docs show the rules the code
runs.
"""

from __future__ import annotations

import enum
from types import MappingProxyType
from typing import TYPE_CHECKING

from jobledger._core.errors import InvalidTransitionError
from jobledger._core.job import JobPhase

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["TRANSITIONS", "CommandKind", "lifecycle_mermaid", "next_phase"]


class CommandKind(enum.StrEnum):
    """The lifecycle actions, one per command."""

    START = "start"
    UPDATE = "update"
    COMPLETE = "complete"
    FAIL = "fail"
    CANCEL = "cancel"


#: Every allowed transition: ``(phase before, command) -> phase after``. ``None``
#: stands for "no job yet". Pairs not listed are refused.
TRANSITIONS: Mapping[tuple[JobPhase | None, CommandKind], JobPhase] = MappingProxyType(
    {
        (None, CommandKind.START): JobPhase.ACTIVE,
        (JobPhase.ACTIVE, CommandKind.UPDATE): JobPhase.ACTIVE,
        (JobPhase.ACTIVE, CommandKind.COMPLETE): JobPhase.COMPLETED,
        (JobPhase.ACTIVE, CommandKind.FAIL): JobPhase.FAILED,
        (JobPhase.ACTIVE, CommandKind.CANCEL): JobPhase.CANCELED,
    }
)


def next_phase(job_id: str, phase: JobPhase, command: CommandKind) -> JobPhase:
    """The phase a job in ``phase`` moves to on ``command``.

    Raises:
        InvalidTransitionError: if the lifecycle does not allow ``command`` in
            ``phase``.
    """
    try:
        return TRANSITIONS[phase, command]
    except KeyError:
        raise InvalidTransitionError(job_id, phase.value, command.value) from None


def lifecycle_mermaid() -> str:
    """Render :data:`TRANSITIONS` as a Mermaid state diagram.

    >>> print(lifecycle_mermaid())  # doctest: +ELLIPSIS
    stateDiagram-v2
        [*] --> active: start
        active --> active: update
        ...
    """
    lines = ["stateDiagram-v2"]
    for (before, command), after in TRANSITIONS.items():
        source = "[*]" if before is None else before.value
        lines.append(f"    {source} --> {after.value}: {command.value}")
    lines.extend(f"    {phase.value} --> [*]" for phase in JobPhase if phase.is_terminal)
    return "\n".join(lines)
