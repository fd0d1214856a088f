"""``workbench users``: the apps' users, their roles and the enterprises each may see.

Passwords are typed at a hidden prompt or read from standard input (``--password-stdin``), never
taken from the command line (it would be in the shell history and the process list); they are
stored as scrypt hashes (:mod:`workbench.apps.auth`).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from workbench.apps.roles import ROLES
from workbench.cli.errors import fail

DEFAULT_USERS = "data/users.db"

_db_option = click.option("--db", "db_url", default=None,
                          help=f"Users database: SQLAlchemy URL or SQLite file (default $WORKBENCH_USERS or "
                               f"{DEFAULT_USERS}).")
_who_option = click.option("--who", default=None, help="Who does it, for the audit log (default user:<login>).")


def user_store(url: str | None, *, create: bool = False):
    """The users database named on the command line (a plain path is a SQLite file); one that
    does not exist is created only by ``users add``."""
    from workbench.apps.auth import UserStore

    url = url or os.environ.get("WORKBENCH_USERS") or DEFAULT_USERS
    if "://" not in url:
        path = Path(url)
        if not path.exists():
            if not create:
                fail(f"users database {path}: no such file (create the first user with `workbench users add`)")
            path.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{path.resolve()}"
    return UserStore(url)


def _who(who: str | None) -> str:
    if who:
        return who
    try:
        return f"user:{os.getlogin()}"
    except OSError:
        return f"user:{os.environ.get('USER', 'unknown')}"


def _password(stdin: bool) -> str:
    if stdin:
        line = sys.stdin.readline()
        if not line:
            fail("--password-stdin: nothing on standard input (give the password on one line)")
        return line.rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@click.group("users")
def users_group():
    """Users of the apps: add, grant, revoke, list (roles: analyst, manager, verifier, reviewer, admin)."""


@users_group.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (else a hidden prompt).")
@click.option("--grant", "grants", multiple=True, metavar="ENTERPRISE",
              help="An enterprise the user may see (repeatable; * for every enterprise).")
@_db_option
@_who_option
def users_add(name, role, password_stdin, grants, db_url, who):
    """Add a user with a role; the password is asked for (hidden) and stored hashed."""
    store = user_store(db_url, create=True)
    try:
        store.add(name, role, _password(password_stdin), by=_who(who))
        for e in grants:
            store.grant(name, e, by=_who(who))
    finally:
        store.dispose()
    click.echo(f"user {name} added as {role}" + (f", may see {', '.join(grants)}" if grants else
                                                 " (no enterprise yet: `workbench users grant`)"))


@users_group.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (else a hidden prompt).")
@_db_option
@_who_option
def users_passwd(name, password_stdin, db_url, who):
    """Set a user's password."""
    store = user_store(db_url)
    try:
        store.set_password(name, _password(password_stdin), by=_who(who))
    finally:
        store.dispose()
    click.echo(f"password of {name} changed")


@users_group.command("grant")
@click.argument("name")
@click.argument("enterprises", nargs=-1, required=True)
@_db_option
@_who_option
def users_grant(name, enterprises, db_url, who):
    """Let a user see enterprises (their enterprise_id; * for every enterprise)."""
    store = user_store(db_url)
    try:
        for e in enterprises:
            store.grant(name, e, by=_who(who))
    finally:
        store.dispose()
    click.echo(f"{name} may see {', '.join(enterprises)}")


@users_group.command("revoke")
@click.argument("name")
@click.argument("enterprises", nargs=-1, required=True)
@_db_option
@_who_option
def users_revoke(name, enterprises, db_url, who):
    """Take enterprises away from a user."""
    store = user_store(db_url)
    try:
        for e in enterprises:
            store.revoke(name, e, by=_who(who))
    finally:
        store.dispose()
    click.echo(f"{name} may no longer see {', '.join(enterprises)}")


@users_group.command("disable")
@click.argument("name")
@_db_option
@_who_option
def users_disable(name, db_url, who):
    """Disable a user (kept for the audit log; logins refused)."""
    store = user_store(db_url)
    try:
        store.disable(name, by=_who(who))
    finally:
        store.dispose()
    click.echo(f"user {name} disabled")


@users_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
@_db_option
def users_list(as_json, db_url):
    """The users with their roles and enterprises (never a password or its hash)."""
    store = user_store(db_url)
    try:
        rows = store.list()
    finally:
        store.dispose()
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    for r in rows:
        state = " (disabled)" if r["disabled"] else ""
        click.echo(f"{r['name']:<20} {r['role']:<9} {', '.join(r['enterprises']) or '-'}{state}")


@users_group.command("audit")
@click.option("--user", "actor", default=None, help="Only this user's entries.")
@click.option("--action", default=None, help="Only this action (login, export, grant, denied:read …).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
@_db_option
def users_audit(actor, action, limit, as_json, db_url):
    """Who did what: logins (accepted and refused), exports, grants, refused reads — newest first."""
    store = user_store(db_url)
    try:
        rows = store.audit_log(actor=actor, action=action, limit=limit)
    finally:
        store.dispose()
    if as_json:
        click.echo(json.dumps([{**r, "at": r["at"].isoformat(timespec="seconds")} for r in rows], ensure_ascii=False))
        return
    for r in rows:
        click.echo(f"{r['at']:%Y-%m-%d %H:%M:%S}  {'ok ' if r['ok'] else 'NO '} {r['actor']:<16} {r['action']:<16} "
                   f"{r['enterprise_id'] or '':<16} {r['detail'] or ''} {r['client'] or ''}".rstrip())
