"""``workbench verify``: verification packages for third-party verifiers (seed §9.3).

* ``keygen --out KEY`` — an Ed25519 key pair: ``KEY`` (private, PKCS #8 PEM, mode 0600, encrypted
  with ``--encrypt``) and ``KEY.pub`` (public, PEM — give it to the verifier by another channel);
* ``export --enterprise ID --year Y --out FILE [--lake] [--key]`` — the signed ZIP;
* ``check FILE [--public-key K] [--json]`` — exit 0 when every check passes, 1 with one line per
  problem (file, row, column), 2 for a file that is no package or a key that cannot be read.

Passphrases are never taken from the command line: they come from the environment variable that
``--passphrase-env`` names (default ``WORKBENCH_KEY_PASSPHRASE``) or a hidden prompt.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from workbench.cli.errors import fail

DEFAULT_PASSPHRASE_ENV = "WORKBENCH_KEY_PASSPHRASE"
_passphrase_option = click.option(
    "--passphrase-env", "passphrase_env", default=DEFAULT_PASSPHRASE_ENV, show_default=True, metavar="NAME",
    help="Environment variable holding the key's passphrase (else a hidden prompt; never on the command line).")


@click.group("verify")
def verify_group():
    """Verification packages: keygen, export (signed ZIP), check (signature, hashes, recomputation)."""


@verify_group.command("keygen")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The private key file to write (mode 0600); the public key goes to OUT.pub.")
@click.option("--encrypt", is_flag=True, help="Encrypt the private key with a passphrase.")
@_passphrase_option
def verify_keygen(out, encrypt, passphrase_env):
    """Make an Ed25519 key pair for signing verification packages."""
    from workbench.verification import (
        VerificationError,
        fingerprint,
        generate_key,
        save_private_key,
        save_public_key,
    )

    pub = out.with_name(out.name + ".pub")
    for p in (out, pub):
        if p.exists():
            fail(f"{p}: a file is already there (choose another --out; keys are never replaced)")
    if not out.parent.is_dir():
        fail(f"{out.parent}: no such folder for --out")
    passphrase = None
    if encrypt:
        passphrase = os.environ.get(passphrase_env) or None
        if passphrase is None:
            if not sys.stdin.isatty():
                fail(f"--encrypt: set ${passphrase_env} or run at a terminal to type the passphrase")
            passphrase = click.prompt("Passphrase", hide_input=True, confirmation_prompt=True)
        if len(passphrase) < 10:
            fail("the passphrase must have at least 10 characters")
    key = generate_key()
    try:
        save_private_key(key, out, passphrase=passphrase)
    except VerificationError as exc:
        fail(str(exc))
    save_public_key(key, pub)
    click.echo(f"private key {out} (mode 0600{', encrypted' if passphrase else ''})")
    click.echo(f"public key  {pub}")
    click.echo(f"fingerprint {fingerprint(key)}")


def _signing_key(path: Path | None, passphrase_env: str):
    from workbench.verification import VerificationError, load_private_key

    path = path or (Path(os.environ["WORKBENCH_VERIFY_KEY"]) if os.environ.get("WORKBENCH_VERIFY_KEY") else None)
    if path is None:
        fail("no signing key: give --key KEY or set $WORKBENCH_VERIFY_KEY (make one with `workbench verify keygen "
             "--out KEY`)")
    data = path.read_bytes() if path.is_file() else None
    if data is None:
        fail(f"{path}: no such key file (--key)")
    passphrase = os.environ.get(passphrase_env) or None
    if passphrase is None and b"ENCRYPTED" in data[:64] and sys.stdin.isatty():
        passphrase = click.prompt("Passphrase", hide_input=True)
    try:
        return load_private_key(path, passphrase=passphrase)
    except VerificationError as exc:
        msg = str(exc)
        if "encrypted" in msg and passphrase is None:
            msg += f" (set ${passphrase_env} or run at a terminal)"
        fail(msg)


@verify_group.command("export")
@click.option("--enterprise", "enterprise_id", required=True, help="The enterprise (enterprise_id).")
@click.option("--year", required=True, type=click.IntRange(1900, 2200), help="The reporting year.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The ZIP to write.")
@click.option("--lake", "lake_root", default=None, help="Lake root (default $WORKBENCH_LAKE or data/lake).")
@click.option("--registry", "registry_url", default=None,
              help="Master data (SQLAlchemy URL or SQLite file) for the enterprise's record and boundary.")
@click.option("--key", "key_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The Ed25519 private key (default $WORKBENCH_VERIFY_KEY).")
@_passphrase_option
@click.option("--language", type=click.Choice(["zh", "en"]), default="zh", show_default=True,
              help="Language of the annual report.")
@click.option("--no-notebook", is_flag=True, help="Leave out the executed notebook (faster).")
@click.option("--no-report", is_flag=True, help="Leave out the report (results and evidence only; faster).")
@click.option("--gwp", default="AR5", show_default=True)
def verify_export(enterprise_id, year, out, lake_root, registry_url, key_path, passphrase_env, language, no_notebook,
                  no_report, gwp):
    """Write the signed verification package of an enterprise's reporting year."""
    from workbench.core.errors import WorkbenchError
    from workbench.core.factors import default_library
    from workbench.registry.codes import CodeError, check_enterprise_id
    from workbench.verification import export_package

    try:
        check_enterprise_id(enterprise_id)
    except CodeError as exc:
        fail(f"--enterprise: {exc}")
    try:
        default_library(gwp.upper())
    except (ValueError, KeyError) as exc:
        fail(f"--gwp {gwp}: {exc.args[0] if exc.args else exc}")
    if out.is_dir():
        fail(f"{out}: a folder; --out names the ZIP to write")
    lake_root = lake_root or os.environ.get("WORKBENCH_LAKE", "data/lake")
    lake = _open_lake(lake_root, enterprise_id)
    registry = None
    if registry_url:
        from workbench.cli.common import master_data

        registry = master_data(registry_url)
        try:
            registry.enterprise(enterprise_id)
        except WorkbenchError as exc:
            registry.dispose()
            fail(f"--enterprise: {exc}")
    key = _signing_key(key_path, passphrase_env)
    try:
        res = export_package(lake, enterprise_id, year, out, private_key=key, notebook=not no_notebook,
                             report=not no_report, registry=registry, gwp=gwp.upper(), language=language)
    except (WorkbenchError, ValueError) as exc:
        fail(str(exc))
    finally:
        if registry is not None:
            registry.dispose()
    m = res.manifest
    click.echo(f"{res.path}: {len(m['files'])} files, {m['summary']['ledger_rows']} ledger rows, "
               f"{m['summary']['raw_files']} raw files, total {m['summary']['total_tco2e']:,.3f} tCO2e")
    click.echo(f"report: {(m['report'] or {}).get('engine') or 'none'} — {(m['report'] or {}).get('why', '')}")
    click.echo(f"signed by {res.fingerprint} in {res.seconds['total']:.1f} s")


def _open_lake(root: str, enterprise: str):
    """The lake root (it must exist: an export never creates one) holding ``enterprise``."""
    from workbench.lake.store import Lake

    if "://" not in root:
        p = Path(root)
        if not p.exists():
            fail(f"--lake {root}: no such lake (load data with `workbench lake ingest` first)")
        if not p.is_dir():
            fail(f"--lake {root}: not a lake folder")
        if not (p / "enterprises" / enterprise).is_dir():
            fail(f"--enterprise {enterprise}: the lake {root} holds no data of it")
        try:
            import sqlite3

            db = p / "lake.db"
            if db.exists():
                sqlite3.connect(f"file:{db}?mode=ro", uri=True).execute("SELECT 1 FROM sqlite_master").fetchall()
        except sqlite3.DatabaseError:
            fail(f"--lake {root}: lake.db there is not a lake manifest")
    return Lake(root)


@verify_group.command("check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--public-key", "public_key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="The signer's public key (PEM), received by another channel: pins the signer.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def verify_check(file, public_key, as_json):
    """Check a verification package: signature, every file's SHA-256, and every emission recomputed from
    the package's own data.  Exit 0: all checks pass; 1: one line per problem (file, row, column)."""
    from workbench.verification import VerificationError, check_package, load_public_key

    try:
        key = load_public_key(public_key) if public_key is not None else None
        result = check_package(file, public_key=key)
    except VerificationError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, default=str))
    else:
        for line in result.lines():
            click.echo(line)
        for w in result.warnings:
            click.echo(f"warning: {w}", err=True)
        if result.ok:
            click.echo(result.summary())
    sys.exit(0 if result.ok else 1)
