"""The demo's logins: one user per role, passwords made up on the spot (shown once, stored hashed)."""
from __future__ import annotations

import secrets

__all__ = ["DEMO_USERS", "demo_users"]

#: name → (role, which of the demo enterprises: "all", the first only, or "*": every enterprise, the
#: demo region's too — a regional manager)
DEMO_USERS = {
    "demo-manager": ("manager", "all"),
    "demo-region": ("manager", "*"),
    "demo-analyst": ("analyst", "all"),
    "demo-verifier": ("verifier", "first"),
    "demo-reviewer": ("reviewer", "*"),
    "demo-admin": ("admin", "all"),
}


def demo_users(store, enterprises: list[str], *, by: str = "demo") -> list[dict]:
    """Create (or reset) the demo users with new random passwords; their grants are set to
    ``enterprises`` (the verifier: the first only).  Returns name, role, password, enterprises."""
    existing = {u["name"]: u for u in store.list()}
    out = []
    for name, (role, scope) in DEMO_USERS.items():
        password = "-".join(secrets.token_hex(3) for _ in range(3))      # 20 characters, easy to type
        grants = list(enterprises) if scope == "all" else ["*"] if scope == "*" else list(enterprises[:1])
        if name in existing:
            store.set_password(name, password, by=by)
            store.set_role(name, role, by=by)
            for e in existing[name]["enterprises"]:
                if e not in grants:
                    store.revoke(name, e, by=by)
        else:
            store.add(name, role, password, by=by)
        for e in grants:
            store.grant(name, e, by=by)
        out.append({"name": name, "role": role, "password": password, "enterprises": grants})
    return out
