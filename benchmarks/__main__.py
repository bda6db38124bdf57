"""``python -m benchmarks``: run the suite (the same as ``python benchmarks/run.py``)."""

from benchmarks.run import main

raise SystemExit(main())
