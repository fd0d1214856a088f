"""Ed25519 keys that sign verification packages (RFC 8032, through ``cryptography``).

* the private key is a PKCS #8 PEM file written with mode 0600 (refused on load when group or others
  may read it, as ssh does), optionally encrypted with a passphrase (``BestAvailableEncryption``) —
  the passphrase comes from the caller (an environment variable or a hidden prompt in the CLI),
  never from a command line;
* the public key is a SubjectPublicKeyInfo PEM file a verifier receives by another channel;
* a key's **fingerprint** is ``sha256:`` + the hex SHA-256 of its 32 raw public-key bytes.
"""
from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from workbench.verification.errors import VerificationError

__all__ = ["fingerprint", "generate_key", "load_private_key", "load_public_key", "public_pem", "save_private_key",
           "save_public_key", "sign", "verify_signature"]


def generate_key() -> Ed25519PrivateKey:
    """A new Ed25519 private key."""
    return Ed25519PrivateKey.generate()


def _public(key) -> Ed25519PublicKey:
    return key.public_key() if isinstance(key, Ed25519PrivateKey) else key


def fingerprint(key) -> str:
    """``sha256:<hex>`` of the raw public key (of a private or a public key)."""
    raw = _public(key).public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def public_pem(key) -> bytes:
    """The public key (of a private or a public key) as a PEM SubjectPublicKeyInfo."""
    return _public(key).public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _secret(passphrase) -> bytes | None:
    if passphrase is None or passphrase == "" or passphrase == b"":
        return None
    return passphrase.encode("utf-8") if isinstance(passphrase, str) else bytes(passphrase)


def save_private_key(key: Ed25519PrivateKey, path, *, passphrase=None, overwrite: bool = False) -> Path:
    """Write ``key`` as PKCS #8 PEM at ``path`` with mode 0600 (created so: never readable by others,
    not even for an instant); encrypted when ``passphrase`` is given.  An existing file is refused
    unless ``overwrite``."""
    path = Path(path)
    secret = _secret(passphrase)
    enc = serialization.BestAvailableEncryption(secret) if secret else serialization.NoEncryption()
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    if path.exists() and not overwrite:
        raise VerificationError(f"{path}: a key file is already there (choose another name; it is not replaced)")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (0 if overwrite else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)
    return path


def save_public_key(key, path) -> Path:
    """Write the public key of ``key`` as PEM at ``path`` (mode 0644)."""
    path = Path(path)
    path.write_bytes(public_pem(key))
    return path


def _read(source, what: str) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source), what
    path = Path(source)
    try:
        return path.read_bytes(), str(path)
    except IsADirectoryError:
        raise VerificationError(f"{path}: a folder, not a {what} file") from None
    except FileNotFoundError:
        raise VerificationError(f"{path}: no such {what} file") from None


def load_private_key(source, *, passphrase=None) -> Ed25519PrivateKey:
    """The Ed25519 private key in a PEM file (or its bytes); ``passphrase`` for an encrypted one.
    A key file that group or others may read is refused (``chmod 600 FILE``)."""
    if not isinstance(source, (bytes, bytearray)):
        p = Path(source)
        if p.is_file() and os.name == "posix" and p.stat().st_mode & 0o077:
            raise VerificationError(f"{p}: the private key may be read by others (mode "
                                    f"{p.stat().st_mode & 0o777:o}); make it private with `chmod 600 {p}`")
    data, name = _read(source, "private key")
    secret = _secret(passphrase)
    try:
        key = serialization.load_pem_private_key(data, password=secret)
    except TypeError:
        if secret is None:
            raise VerificationError(f"{name}: the private key is encrypted; give its passphrase") from None
        raise VerificationError(f"{name}: the private key is not encrypted; give no passphrase") from None
    except ValueError as exc:
        if secret is not None and b"ENCRYPTED" in data[:64]:
            raise VerificationError(f"{name}: wrong passphrase for the private key") from None
        raise VerificationError(f"{name}: not a PEM private key ({_why(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - cryptography raises several kinds on junk input
        raise VerificationError(f"{name}: not a PEM private key ({_why(exc)})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise VerificationError(f"{name}: not an Ed25519 key (make one with `workbench verify keygen`)")
    return key


def load_public_key(source) -> Ed25519PublicKey:
    """The Ed25519 public key in a PEM file (or its bytes)."""
    data, name = _read(source, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except Exception as exc:  # noqa: BLE001 - cryptography raises several kinds on junk input
        raise VerificationError(f"{name}: not a PEM public key ({_why(exc)})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise VerificationError(f"{name}: not an Ed25519 public key")
    return key


def _why(exc: Exception) -> str:
    text = str(exc).split("\n")[0].strip()
    return "unreadable" if not text or "Error" in text or "error" in text else text[:80]


def sign(key: Ed25519PrivateKey, data: bytes) -> str:
    """The Ed25519 signature of ``data``, base64."""
    return base64.b64encode(key.sign(data)).decode("ascii")


def verify_signature(key: Ed25519PublicKey, data: bytes, signature: str) -> bool:
    """Whether ``signature`` (base64) is ``key``'s signature of ``data``."""
    try:
        key.verify(base64.b64decode(signature, validate=True), data)
        return True
    except (InvalidSignature, ValueError, TypeError):
        return False
