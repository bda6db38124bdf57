"""What a client may do: actions, each for every service or for one.

A permission is written ``ACTION[:SERVICE]``: ``read``, ``start:hr``,
``*`` (everything), ``read:*`` (reading everywhere).

>>> grants = Permissions.parse(["read", "start:hr"])
>>> grants.allows("start", "hr"), grants.allows("start", "finance"), grants.allows("cancel", "hr")
(True, False, False)
>>> str(grants)
'read start:hr'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from jobledger import InvalidJobDataError
from jobledger.runner import RUN_SERVICE

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["ACTIONS", "ANY", "Permission", "Permissions"]

#: Every action a permission can name.
ACTIONS = ("read", "start", "update", "complete", "fail", "cancel", "run", "admin")
#: The wildcard for every action or every service.
ANY = "*"


@attrs.frozen
class Permission:
    """One action allowed on the jobs of one service, or of every service.

    Attributes:
        action: One of :data:`ACTIONS`, or ``*`` for all of them.
        service: The service whose jobs it covers, or ``*`` for every service.
    """

    action: str
    service: str = ANY

    @classmethod
    def parse(cls, text: str) -> Permission:
        """Read ``ACTION[:SERVICE]``.

        Raises:
            InvalidJobDataError: the action is unknown or the service empty.
        """
        action, separator, service = text.strip().partition(":")
        if action not in (*ACTIONS, ANY):
            known = ", ".join(ACTIONS)
            raise InvalidJobDataError(
                "permission", "", f"{text!r} names no action; use one of {known} or *"
            )
        if separator and not service:
            raise InvalidJobDataError("permission", "", f"{text!r} names an empty service")
        return cls(action, service or ANY)

    def allows(self, action: str, service: str) -> bool:
        """Whether this permission covers ``action`` on jobs of ``service``.

        ``run`` covers what driving runs takes: every action but ``admin`` on
        the jobs of the runner's service (``jobledger.runner``, or the
        service it names: ``run:nightly`` for a runner recording under
        ``nightly``).

        >>> Permission("run").allows("start", "jobledger.runner")
        True
        >>> (
        ...     Permission("run").allows("start", "hr"),
        ...     Permission("run").allows("admin", "jobledger.runner"),
        ... )
        (False, False)
        """
        if self.action == "run":
            runs_of = RUN_SERVICE if self.service == ANY else self.service
            return action != "admin" and service == runs_of
        return self.action in (ANY, action) and self.service in (ANY, service)

    def __str__(self) -> str:
        """``ACTION`` or ``ACTION:SERVICE``, as :meth:`parse` reads it."""
        return self.action if self.service == ANY else f"{self.action}:{self.service}"


def _grants(values: Iterable[Permission]) -> tuple[Permission, ...]:
    return tuple(values)


@attrs.frozen
class Permissions:
    """Everything one client may do.

    Attributes:
        grants: Its permissions.
    """

    grants: tuple[Permission, ...] = attrs.field(converter=_grants)

    @classmethod
    def parse(cls, texts: Iterable[str]) -> Permissions:
        """Read several ``ACTION[:SERVICE]`` (blank-separated in one string, or one each).

        Raises:
            InvalidJobDataError: one of them is not a permission.
        """
        return cls(Permission.parse(word) for text in texts for word in text.split())

    def allows(self, action: str, service: str) -> bool:
        """Whether some permission covers ``action`` on jobs of ``service``."""
        return any(grant.allows(action, service) for grant in self.grants)

    def services(self, action: str) -> frozenset[str] | None:
        """The services whose jobs ``action`` covers; ``None`` for every service.

        >>> Permissions.parse(["read:hr", "read:it", "start"]).services("read") == {"hr", "it"}
        True
        """
        services = {grant.service for grant in self.grants if grant.action in (ANY, action)}
        if action != "admin":
            services |= {
                RUN_SERVICE if grant.service == ANY else grant.service
                for grant in self.grants
                if grant.action == "run"
            }
        return None if ANY in services else frozenset(services)

    def __str__(self) -> str:
        """The permissions, blank-separated, as :meth:`parse` reads them."""
        return " ".join(map(str, self.grants))
