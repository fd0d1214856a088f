"""Signing keys and the command line: ``workbench verify keygen`` (private key mode 0600, optional
passphrase from the environment or a prompt — never an option), ``export`` and ``check`` (exit 0 when
every check passes, 1 with one line per problem, 2 for what is no package)."""
from __future__ import annotations

import json
import os
import stat
import zipfile

import click
import pytest
from click.testing import CliRunner
from verify_lake import ENT, TOTAL

from workbench.cli.main import main
from workbench.verification import (
    VerificationError,
    fingerprint,
    generate_key,
    load_private_key,
    load_public_key,
    save_private_key,
    save_public_key,
)

PASS = "a long enough passphrase"


def test_keys_round_trip_with_mode_0600(tmp_path):
    key = generate_key()
    path = save_private_key(key, tmp_path / "k")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert fingerprint(load_private_key(path)) == fingerprint(key)
    pub = save_public_key(key, tmp_path / "k.pub")
    assert pub.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert fingerprint(load_public_key(pub)) == fingerprint(key)
    assert fingerprint(key).startswith("sha256:") and len(fingerprint(key)) == 7 + 64
    with pytest.raises(VerificationError, match="already there"):
        save_private_key(generate_key(), path)
    assert fingerprint(load_private_key(path)) == fingerprint(key)       # not replaced


def test_an_encrypted_key_needs_its_passphrase(tmp_path):
    key = generate_key()
    path = save_private_key(key, tmp_path / "k", passphrase=PASS)
    assert b"ENCRYPTED" in path.read_bytes()[:64]
    with pytest.raises(VerificationError, match="encrypted"):
        load_private_key(path)
    with pytest.raises(VerificationError, match="wrong passphrase"):
        load_private_key(path, passphrase="not the passphrase")
    assert fingerprint(load_private_key(path, passphrase=PASS)) == fingerprint(key)


def test_a_key_others_may_read_is_refused(tmp_path):
    path = save_private_key(generate_key(), tmp_path / "k")
    os.chmod(path, 0o644)
    with pytest.raises(VerificationError, match="chmod 600"):
        load_private_key(path)


def test_what_is_no_key_is_refused(tmp_path):
    junk = tmp_path / "junk"
    junk.write_text("not a key")
    os.chmod(junk, 0o600)
    with pytest.raises(VerificationError, match="not a PEM private key"):
        load_private_key(junk)
    with pytest.raises(VerificationError, match="not a PEM public key"):
        load_public_key(junk)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    other = ec.generate_private_key(ec.SECP256R1())
    pem = other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    with pytest.raises(VerificationError, match="not an Ed25519 key"):
        load_private_key(pem)


def test_no_passphrase_on_the_command_line():
    group = main.commands["verify"]
    opts = {o for cmd in group.commands.values() for p in cmd.params if isinstance(p, click.Option) for o in p.opts}
    assert not any("passphrase" in o and o != "--passphrase-env" for o in opts), opts
    assert {"keygen", "export", "check"} == set(group.commands)


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    return CliRunner(), tmp_path_factory.mktemp("verify-cli")


def test_keygen_export_check_on_the_command_line(cli, vlake, monkeypatch):
    runner, work = cli
    _, lake = vlake
    monkeypatch.delenv("WORKBENCH_KEY_PASSPHRASE", raising=False)
    r = runner.invoke(main, ["verify", "keygen", "--out", str(work / "signer")])
    assert r.exit_code == 0, r.output
    key, pub = work / "signer", work / "signer.pub"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and pub.exists()
    assert fingerprint(load_public_key(pub)) in r.output
    again = runner.invoke(main, ["verify", "keygen", "--out", str(key)])
    assert again.exit_code == 2 and "already there" in again.output
    out = work / "ent-v.zip"
    r = runner.invoke(main, ["verify", "export", "--enterprise", ENT, "--year", "2026", "--out", str(out),
                             "--lake", str(lake.base_url), "--key", str(key), "--no-notebook", "--no-report"])
    assert r.exit_code == 0, r.output
    assert f"total {TOTAL:,.3f} tCO2e" in r.output and fingerprint(load_public_key(pub)) in r.output
    r = runner.invoke(main, ["verify", "check", str(out), "--public-key", str(pub)])
    assert r.exit_code == 0, r.output
    assert r.output.startswith("ok: ") and "5 ledger rows recomputed" in r.output
    r = runner.invoke(main, ["verify", "check", str(out), "--json"])
    doc = json.loads(r.stdout)
    assert r.exit_code == 0 and doc["ok"] and doc["total_tco2e"] == pytest.approx(TOTAL) and not doc["key_pinned"]


def test_check_exits_1_with_one_line_per_problem(cli, vlake):
    runner, work = cli
    out = work / "ent-v.zip"
    if not out.exists():
        pytest.fail("run with test_keygen_export_check_on_the_command_line")
    bad = work / "tampered.zip"
    with zipfile.ZipFile(out) as z:
        files = {n: z.read(n) for n in z.namelist()}
    text = files["results/by_gas.csv"].decode().splitlines()
    text[1] = text[1].split(",")[0] + ",1.0"
    files["results/by_gas.csv"] = ("\n".join(text) + "\n").encode()
    files["data/extra.csv"] = b"a,b\n1,2\n"
    with zipfile.ZipFile(bad, "w") as z:
        for n, b in files.items():
            z.writestr(n, b)
    r = runner.invoke(main, ["verify", "check", str(bad)])
    assert r.exit_code == 1
    lines = r.stdout.strip().splitlines()
    assert len(lines) == len(set(lines)) == 3, r.stdout
    assert any(line.startswith("results/by_gas.csv: SHA-256") for line in lines)
    assert any(line.startswith("results/by_gas.csv, row 2, column 'tco2e': 1 but") for line in lines)
    assert any(line.startswith("data/extra.csv: not in manifest.json") for line in lines)
    other = work / "other"
    runner.invoke(main, ["verify", "keygen", "--out", str(other)])
    r = runner.invoke(main, ["verify", "check", str(out), "--public-key", str(work / "other.pub")])
    assert r.exit_code == 1 and "not by the given public key" in r.stdout
    r = runner.invoke(main, ["verify", "check", str(work / "signer.pub")])
    assert r.exit_code == 2 and "not a ZIP file" in r.output


def test_an_encrypted_key_takes_its_passphrase_from_the_environment(cli, vlake, monkeypatch):
    runner, work = cli
    _, lake = vlake
    monkeypatch.setenv("SIGNER_PASS", PASS)
    r = runner.invoke(main, ["verify", "keygen", "--out", str(work / "locked"), "--encrypt",
                             "--passphrase-env", "SIGNER_PASS"])
    assert r.exit_code == 0 and "encrypted" in r.output, r.output
    assert PASS.encode() not in (work / "locked").read_bytes()
    args = ["verify", "export", "--enterprise", ENT, "--year", "2026", "--out", str(work / "locked.zip"),
            "--lake", str(lake.base_url), "--key", str(work / "locked"), "--no-notebook", "--no-report"]
    r = runner.invoke(main, args)                        # no passphrase given, no terminal to ask at
    assert r.exit_code == 2 and "encrypted" in r.output and "WORKBENCH_KEY_PASSPHRASE" in r.output
    r = runner.invoke(main, [*args, "--passphrase-env", "SIGNER_PASS"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["verify", "check", str(work / "locked.zip"), "--public-key", str(work / "locked.pub")])
    assert r.exit_code == 0, r.output
