"""The verification package's one base error."""
from __future__ import annotations

from workbench.core.errors import WorkbenchError

__all__ = ["VerificationError"]


class VerificationError(WorkbenchError, ValueError):
    """A key, a package or an input the verification package cannot work with (bad input: the
    message names the file).  A package that opens but fails its checks is not an error: it is a
    :class:`~workbench.verification.check.CheckResult` with problems."""
