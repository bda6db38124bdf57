"""Checks that the ``cli`` extra is installed, so its absence is told in words."""

from __future__ import annotations

import importlib.util

__all__: list[str] = []

for _name in ("click", "rich"):
    if importlib.util.find_spec(_name) is None:
        _MISSING = (
            f"jobledger's command line needs {_name}, from the cli extra: "
            'pip install "jobledger[cli]"'
        )
        raise ImportError(_MISSING, name=_name)
