"""The products package's one base error."""
from __future__ import annotations

from workbench.core.errors import WorkbenchError

__all__ = ["LabelError", "ProductError"]


class ProductError(WorkbenchError, ValueError):
    """Product footprints, allocation, labels or CBAM data that cannot be made from the input given
    (the message names the product, period, facility or option)."""


class LabelError(ProductError):
    """A label record that does not exist or a step its status does not allow (approve a rejected
    label, publish one not approved)."""
