"""The ``jobledger`` command line: invoke jobs like Usercube-Invoke-Job, steer and read the ledger.

Install it with the ``cli`` extra (``pip install "jobledger[cli]"``: click and
rich), then run ``jobledger demo``. The commands:

* ``jobledger invoke -j JOB`` launches a job and follows its run to the end,
  with the flags of Usercube-Invoke-Job (``-r``, ``-b``, ``-e``, ``-t``, ``-f``,
  ``-c``, ``-s``);
* ``jobledger steps -j JOB`` lists its steps (Usercube-Get-JobSteps);
* ``jobledger resume ID`` and ``jobledger cancel ID`` steer a run from any
  process that shares the store (a run is driven by one runner at a time:
  the lease its runner records decides when another may take it over);
* ``jobledger show ID``, ``jobledger history ID``, ``jobledger list`` and
  ``jobledger watch`` read the ledger (each with ``--json``);
* ``jobledger demo`` runs the bundled ``hr-nightly`` job (:mod:`jobledger.demo`).

Each command's exit code is an :class:`ExitCode`. :func:`reference_markdown`
renders every command's help as the documentation's CLI reference.
"""

from __future__ import annotations

# The command modules add their commands to the group when imported;
# _extras first: it says which extra to install when click or rich is missing.
from jobledger.cli import (  # noqa: F401  (imported for what they do)
    _extras,
    _parked,
    _read,
    _retention,
    _run,
    _service,
)
from jobledger.cli._app import LEASE_SECONDS, POLL_SECONDS
from jobledger.cli._errors import (
    AppError,
    CommandLineError,
    JobBusyError,
    NoRepairVariantError,
    NothingToRepairError,
    RunDrivenError,
    StoreSpecError,
    StoreUnreachableError,
    UnknownJobError,
)
from jobledger.cli._exit import EXIT_CODE_MEANINGS, ExitCode
from jobledger.cli._reference import reference_markdown
from jobledger.cli._root import cli, main

__all__ = [
    "EXIT_CODE_MEANINGS",
    "LEASE_SECONDS",
    "POLL_SECONDS",
    "AppError",
    "CommandLineError",
    "ExitCode",
    "JobBusyError",
    "NoRepairVariantError",
    "NothingToRepairError",
    "RunDrivenError",
    "StoreSpecError",
    "StoreUnreachableError",
    "UnknownJobError",
    "cli",
    "main",
    "reference_markdown",
]
