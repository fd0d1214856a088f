"""The apps' roles and what each may do — one definition, light enough for the command line to
import (``workbench users add --role``) without the user store.  :mod:`workbench.apps.auth`
re-exports these and documents them (its module doc: the roles table and the separation of duties)."""
from __future__ import annotations

__all__ = ["ALL", "PERMISSIONS", "ROLES"]

ROLES = ("analyst", "manager", "verifier", "reviewer", "admin")
#: what each role may do (``review`` is the reviewer's alone: separation of duties, see
#: :mod:`workbench.apps.auth`)
PERMISSIONS = {
    "verifier": frozenset({"read"}),
    "manager": frozenset({"read", "export", "acknowledge"}),
    "analyst": frozenset({"read", "export", "import", "acknowledge"}),
    "reviewer": frozenset({"read", "export", "review"}),
    "admin": frozenset({"read", "export", "import", "acknowledge", "manage_users"}),
}
#: the grant that stands for every enterprise
ALL = "*"
