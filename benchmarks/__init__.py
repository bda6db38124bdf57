"""jobledger's benchmark suite: jobledger against its peer and the floor of each backend.

Run it with ``nox -s bench`` (or ``python -m benchmarks`` where jobledger, its
``postgres`` extra and the peer ``eventsourcing`` are installed); see
``benchmarks/README.md`` for the cases, the targets and the flags.
"""
