"""``python -m jobledger`` and the ``jobledger`` command (the command line needs the cli extra).

:func:`main` is the command's entry point. It imports the command line itself,
so that a Ctrl-C while it loads ends the process quietly (exit 130) instead of
with a traceback, and a missing extra is said in one line.
"""

from __future__ import annotations

import os
import sys

__all__ = ["main"]

_INTERRUPTED = 130


def _forget_working_directory() -> None:
    # ``python -m`` puts the working directory first on the import path: modules
    # there must not stand in for the ones jobledger imports (see jobledger.cli._app).
    if sys.path and sys.path[0] in {"", os.getcwd()} and not sys.flags.safe_path:  # noqa: PTH109  (compared as the string Python put there)
        del sys.path[0]


def main() -> None:
    """Run the ``jobledger`` command line with ``sys.argv``; exit with its code."""
    try:
        _forget_working_directory()
        from jobledger.cli import main as command_line  # noqa: PLC0415  (interruptible import)

        command_line()
    except ImportError as err:
        sys.exit(f"jobledger: {err}")
    except KeyboardInterrupt:
        sys.stderr.write("jobledger: interrupted\n")
        sys.exit(_INTERRUPTED)


if __name__ == "__main__":
    main()
