"""HR sync: the HR service exports employees, the IT service provisions their accounts.

Both services record their work in one jobledger job per run (see :mod:`hr_sync.services`).
"""

from hr_sync.services import AccountProvisioner, EmployeeExport, fail_stalled_runs

__all__ = ["AccountProvisioner", "EmployeeExport", "fail_stalled_runs"]
