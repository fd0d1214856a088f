"""Users, roles, grants and the audit log of the apps (issue 13, point 6)."""
from __future__ import annotations

import datetime as dt
import json
import sqlite3

import pytest
from click.testing import CliRunner

from workbench.apps import auth
from workbench.apps.auth import AccessDenied, AuthError, UserStore
from workbench.cli.main import main

PASSWORD = "correct horse battery"


@pytest.fixture()
def store(tmp_path):
    s = UserStore(f"sqlite:///{tmp_path / 'users.db'}", scrypt_n=2**10)
    s.add("alice", "manager", PASSWORD)
    s.grant("alice", "ent-a")
    s.add("vera", "verifier", "another long one")
    s.grant("vera", "ent-b")
    yield s
    s.dispose()


def test_passwords_are_stored_hashed_and_checked(store, tmp_path):
    con = sqlite3.connect(tmp_path / "users.db")
    (stored,) = con.execute("SELECT password_hash FROM users WHERE name = 'alice'").fetchone()
    assert stored.startswith("scrypt$") and PASSWORD not in stored
    dump = b"".join(line.encode() for line in con.iterdump())
    assert PASSWORD.encode() not in dump
    p = store.authenticate("alice", PASSWORD, client="127.0.0.1")
    assert p is not None and (p.name, p.role, p.enterprises) == ("alice", "manager", frozenset({"ent-a"}))
    assert store.authenticate("alice", PASSWORD + "x") is None
    assert store.authenticate("nobody", PASSWORD) is None
    assert store.authenticate("", "") is None
    log = store.audit_log(action="login")
    assert [(r["actor"], r["ok"]) for r in reversed(log)] == [("alice", True), ("alice", False), ("nobody", False),
                                                               ("?", False)]
    assert all(PASSWORD not in (r["detail"] or "") for r in store.audit_log())


def test_roles_and_grants_decide_what_is_read(store, tmp_path):
    alice = store.authenticate("alice", PASSWORD)
    vera = store.authenticate("vera", "another long one")
    assert alice.may("read", "ent-a") and not alice.may("read", "ent-b")
    assert alice.may("export", "ent-a") and alice.may("acknowledge", "ent-a") and not alice.may("import", "ent-a")
    assert vera.may("read", "ent-b") and not vera.may("export", "ent-b") and not vera.may("acknowledge", "ent-b")
    assert alice.visible(["ent-b", "ent-a", "ent-c"]) == ["ent-a"]
    # enforced where the data is read: the lake of an enterprise not granted is never opened
    lake = alice.lake(tmp_path / "lake", "ent-a")
    assert lake.enterprise == "ent-a"
    with pytest.raises(AccessDenied, match="may not read ent-b"):
        alice.lake(tmp_path / "lake", "ent-b")
    with pytest.raises(AccessDenied):
        vera.exported("ent-b", "explorer CSV")
    alice.exported("ent-a", "explorer CSV")
    actions = [(r["actor"], r["action"], r["enterprise_id"], r["ok"]) for r in reversed(store.audit_log())]
    assert ("alice", "denied:read", "ent-b", False) in actions and ("vera", "denied:export", "ent-b", False) in actions
    assert ("alice", "export", "ent-a", True) in actions


def test_the_all_grant_is_explicit_even_for_an_admin(store):
    store.add("root", "admin", "admin password 1")
    admin = store.authenticate("root", "admin password 1")
    assert admin.may("manage_users") and not admin.may("read", "ent-a")
    store.grant("root", "*")
    admin = store.authenticate("root", "admin password 1")
    assert admin.may("read", "ent-a") and admin.may("read", "anything-else")
    store.revoke("root", "*")
    assert not store.authenticate("root", "admin password 1").may("read", "ent-a")


def test_bad_users_roles_and_passwords_are_refused(store):
    with pytest.raises(AuthError, match="exists"):
        store.add("alice", "analyst", PASSWORD)
    with pytest.raises(AuthError, match="role"):
        store.add("bob", "boss", PASSWORD)
    with pytest.raises(AuthError, match="at least"):
        store.add("bob", "analyst", "short")
    with pytest.raises(AuthError, match="user name"):
        store.add("bob smith", "analyst", PASSWORD)
    with pytest.raises(AuthError, match="must not be the user name"):
        store.add("bobbybobby", "analyst", "BobbyBobby")
    with pytest.raises(AuthError, match="no user"):
        store.grant("carol", "ent-a")
    with pytest.raises(AuthError, match="not an enterprise id"):
        store.grant("alice", "../etc")
    with pytest.raises(AuthError, match="no grant"):
        store.revoke("alice", "ent-z")


def test_repeated_failures_lock_the_name_and_a_disabled_user_cannot_log_in(store, monkeypatch):
    for _ in range(auth.MAX_FAILURES):
        assert store.authenticate("alice", "wrong password") is None
    assert store.locked("alice")
    assert store.authenticate("alice", PASSWORD) is None          # even the right password, for now
    assert not store.locked("vera")
    later = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + auth.LOCKOUT + dt.timedelta(seconds=1)
    monkeypatch.setattr(auth, "_now", lambda: later)
    assert store.authenticate("alice", PASSWORD) is not None       # the window has passed
    store.disable("alice")
    assert store.authenticate("alice", PASSWORD) is None


def test_users_command(tmp_path):
    db = str(tmp_path / "u.db")
    run = CliRunner().invoke
    r = run(main, ["users", "add", "alice", "--role", "analyst", "--grant", "ent-a", "--password-stdin", "--db", db,
                   "--who", "tester"], input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    r = run(main, ["users", "add", "bob", "--role", "verifier", "--db", db], input="bob password 1\nbob password 1\n")
    assert r.exit_code == 0 and PASSWORD not in r.output, r.output
    assert run(main, ["users", "grant", "bob", "ent-a", "ent-b", "--db", db]).exit_code == 0
    assert run(main, ["users", "revoke", "bob", "ent-a", "--db", db]).exit_code == 0
    rows = json.loads(run(main, ["users", "list", "--json", "--db", db]).output)
    assert [(u["name"], u["role"], u["enterprises"]) for u in rows] == [("alice", "analyst", ["ent-a"]),
                                                                       ("bob", "verifier", ["ent-b"])]
    assert "hash" not in json.dumps(rows)
    # a password is never an option of the command line
    for cmd in ("add", "passwd"):
        assert "--password " not in run(main, ["users", cmd, "--help"]).output
    r = run(main, ["users", "add", "carol", "--role", "analyst", "--password", "x", "--db", db])
    assert r.exit_code == 2
    r = run(main, ["users", "grant", "nobody", "ent-a", "--db", db])
    assert r.exit_code == 2 and r.output.strip().splitlines() == ["error: no user 'nobody' (`workbench users list` "
                                                                  "shows them)"]
    r = run(main, ["users", "list", "--db", str(tmp_path / "missing.db")])
    assert r.exit_code == 2 and "no such file" in r.output
    audit = json.loads(run(main, ["users", "audit", "--json", "--db", db]).output)
    assert {"user_add", "grant", "revoke"} <= {a["action"] for a in audit}
    assert any(a["actor"] == "tester" for a in audit)


def test_demo_logins_one_per_role_with_new_passwords_each_time(tmp_path):
    from status_lake import build

    build(tmp_path)
    db = str(tmp_path / "users.db")
    run = CliRunner().invoke
    first = run(main, ["demo", "users", "--lake", str(tmp_path / "lake"), "--db", db])
    assert first.exit_code == 0, first.output
    again = run(main, ["demo", "users", "--lake", str(tmp_path / "lake"), "--db", db])
    lines = {ln.split()[0]: ln.split() for ln in first.output.splitlines()[1:]}
    lines2 = {ln.split()[0]: ln.split() for ln in again.output.splitlines()[1:]}
    assert set(lines) == {"demo-manager", "demo-region", "demo-analyst", "demo-verifier", "demo-reviewer",
                          "demo-admin"}
    assert all(lines[n][1] != lines2[n][1] for n in lines)        # new passwords, the old ones no longer work
    store = UserStore(f"sqlite:///{db}")
    try:
        assert store.authenticate("demo-manager", lines[n := "demo-manager"][1]) is None
        m = store.authenticate(n, lines2[n][1])
        assert m.role == "manager" and m.enterprises == {"ent-a", "ent-b"}
        v = store.authenticate("demo-verifier", lines2["demo-verifier"][1])
        assert v.role == "verifier" and v.enterprises == {"ent-a"}
        r = store.authenticate("demo-region", lines2["demo-region"][1])
        assert r.role == "manager" and r.enterprises == {"*"}          # the regional manager: every enterprise
        assert lines2["demo-manager"][1] not in "".join(str(r) for r in store.audit_log())
    finally:
        store.dispose()
