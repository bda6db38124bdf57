"""Run one case in this process: ``python -m benchmarks.case NAME SIZES_JSON [CONNINFO]``.

Prints one line of JSON on standard output: the case's metrics, or its error.
``benchmarks.run`` starts one such process per case.
"""

from __future__ import annotations

import json
import sys
import traceback

from benchmarks.cases import CASES
from benchmarks.measure import Setting, fresh_directory
from benchmarks.sizes import Sizes


def main(argv: list[str]) -> int:
    """Run the case named in ``argv``; print its result as JSON."""
    name, sizes_json = argv[0], argv[1]
    postgres = next(iter(argv[2:]), "") or None
    sizes = Sizes.from_json(json.loads(sizes_json))
    result: dict[str, object]
    try:
        with fresh_directory() as directory:
            metrics = CASES[name](Setting(sizes, directory, postgres))
    except Exception as err:  # noqa: BLE001  (a failing case is reported, the suite goes on)
        result = {"case": name, "error": f"{type(err).__name__}: {err}"}
        traceback.print_exc()
    else:
        result = {"case": name, "metrics": metrics}
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
