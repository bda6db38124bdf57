"""``python -m jobledger``: the ``jobledger`` command line (needs the ``cli`` extra)."""

from __future__ import annotations

import sys

if __name__ == "__main__":
    try:
        from jobledger.cli import main
    except ImportError as err:
        sys.exit(f"jobledger: {err}")
    main()
