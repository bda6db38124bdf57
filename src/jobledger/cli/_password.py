"""Hiding passwords: the one place that masks a store address before anyone prints it."""

from __future__ import annotations

import re

__all__ = ["masked"]

_MASK = "***"
# password=... in a libpq key=value string; a value is a word or a quoted string.
_CONNINFO_PASSWORD = re.compile(r"(?i)(?:(?<=\s)|^)(password\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s']*)")
# user:password@ in a URL, even one too broken to parse (up to the last @ before the path).
_URL_PASSWORD = re.compile(r"(://[^/@:]*:)([^/?#]*)(@)")
# ?password=... or &password=... in a URL's query.
_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)([^&#]*)")


def masked(text: str) -> str:
    """``text``, a store address (or anything that may hold one), with every password hidden.

    The one place that hides a store's password: errors, hints, ``repr`` and
    descriptions all show a store through it.

    >>> masked("postgresql://app:s3cret@db/jobs")
    'postgresql://app:***@db/jobs'
    >>> masked("host=db user=app password='s3 cret' dbname=jobs")
    'host=db user=app password=*** dbname=jobs'
    >>> masked("postgresql://app@db/jobs?password=s3cret&sslmode=require")
    'postgresql://app@db/jobs?password=***&sslmode=require'
    >>> masked("jobs.db")
    'jobs.db'
    """
    text = _URL_PASSWORD.sub(lambda found: f"{found[1]}{_MASK}{found[3]}", text)
    text = _QUERY_PASSWORD.sub(lambda found: f"{found[1]}{_MASK}", text)
    return _CONNINFO_PASSWORD.sub(lambda found: f"{found[1]}{_MASK}", text)
