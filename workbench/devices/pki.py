"""Device certificates (seed §7.3 b access security): a small CA for per-device TLS client
certificates, the broker's server certificate and the revocation list Mosquitto checks.

The CA lives in one folder (:class:`DeviceCA`; created on first use, ``cryptography``, EC P-256,
SHA-256 signatures)::

    ca.key                  the CA's private key (mode 0600) — never leaves this folder
    ca.crt                  the CA certificate (public): the broker's ``cafile``, the devices' trust anchor
    issued/<serial>.pem     every certificate issued (public; no keys): the index the CRL is built from
    revoked.json            serials revoked for good, ``{serial hex: reason}`` (superseded by a
                            re-issue, or revoked explicitly)

Certificates it issues:

* the broker's server certificate (:meth:`DeviceCA.issue_server`): ``CN = mosquitto``, SANs
  ``localhost``, ``127.0.0.1``, ``::1`` and the listener's bind address/host names, serverAuth;
* a client certificate for a device (or a platform user such as the gateway) (:meth:`DeviceCA.issue_device`): ``CN = <device id>`` — the broker
  (``use_identity_as_username``) takes the CN as the user name, so the ACL generated from the
  registry confines the device to its own topics exactly as with a password — clientAuth; a
  fresh EC key per certificate (``device.key``, mode 0600).  Issuing a device a new certificate
  revokes its earlier ones (reason ``superseded``): a device has one valid certificate.

Revocation (:meth:`DeviceCA.crl_pem`): the CRL lists every issued device certificate that is
revoked for good, plus — computed from the registry each time the broker files are generated —
every certificate of a device that is not ``active``: isolated devices with reason
``certificateHold`` (lifted again by a later CRL when the device is restored), retired or
unknown devices with ``cessationOfOperation``.  OpenSSL refuses every client certificate once
the CRL's ``nextUpdate`` has passed, so the CRL is valid for ``crl_days`` (default 365) and is
renewed whenever the broker files are regenerated.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

from workbench.devices.registry import DeviceError, atomic_write, validate_device_id

__all__ = ["ClientTLS", "DeviceCA", "DeviceCertificate", "IssuedCertificate"]

_DAY = dt.timedelta(days=1)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _validity(cert) -> tuple[dt.datetime, dt.datetime]:
    """(not before, not after) as aware UTC datetimes (``*_utc`` since cryptography 42)."""
    if hasattr(cert, "not_valid_after_utc"):
        return cert.not_valid_before_utc, cert.not_valid_after_utc
    return cert.not_valid_before.replace(tzinfo=dt.UTC), cert.not_valid_after.replace(tzinfo=dt.UTC)


def _pem_cert(cert) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def _pem_key(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _new_key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


@dataclass(frozen=True)
class IssuedCertificate:
    """One certificate from ``issued/``: serial, common name, validity."""

    serial: int
    common_name: str
    not_before: dt.datetime
    not_after: dt.datetime
    server: bool


@dataclass(frozen=True)
class DeviceCertificate:
    """Files written by :meth:`DeviceCA.issue_device`: ``device.crt``, ``device.key`` (0600) and
    ``ca.crt`` (to verify the broker) in one folder — what paho's ``tls_set(ca, cert, key)`` needs."""

    device_id: str
    serial: int
    cert: Path
    key: Path
    ca: Path


class DeviceCA:
    """The device CA in ``folder`` (see the module doc); created there when missing.

    ``name``: the CA's common name; ``years``: validity of a new CA certificate."""

    def __init__(self, folder, *, name: str = "Carbon Efficiency Workbench device CA", years: int = 10):
        self.folder = Path(folder).resolve()
        self.key_path = self.folder / "ca.key"
        self.cert_path = self.folder / "ca.crt"
        self.issued_dir = self.folder / "issued"
        self.revoked_path = self.folder / "revoked.json"
        if self.key_path.exists() and self.cert_path.exists():
            self._load()
        elif self.key_path.exists() or self.cert_path.exists():
            raise DeviceError(f"{self.folder}: ca.key and ca.crt must both exist (or neither, to create a CA)")
        else:
            self._create(name, years)

    # ------------------------------------------------------------------ the CA itself
    def _create(self, name: str, years: int) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.x509.oid import NameOID

        self.folder.mkdir(parents=True, exist_ok=True)
        key = _new_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - _DAY).not_valid_after(now + 365 * int(years) * _DAY)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                             crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        atomic_write(self.key_path, _pem_key(key), mode=0o600)
        atomic_write(self.cert_path, _pem_cert(cert), mode=0o644)
        self.issued_dir.mkdir(exist_ok=True)
        self._key, self.cert = key, cert

    def _load(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        self._key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        self.cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        self.issued_dir.mkdir(exist_ok=True)

    @property
    def ca_pem(self) -> bytes:
        return _pem_cert(self.cert)

    def _sign(self, common_name: str, public_key, *, days: int, server: bool, sans=()):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        now = _now()
        b = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
             .issuer_name(self.cert.subject).public_key(public_key).serial_number(x509.random_serial_number())
             .not_valid_before(now - _DAY).not_valid_after(now + int(days) * _DAY)
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                          data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                          crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
             .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                   else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False))
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
        cert = b.sign(self._key, hashes.SHA256())
        atomic_write(self.issued_dir / f"{cert.serial_number:x}.pem", _pem_cert(cert), mode=0o644)
        return cert

    # ------------------------------------------------------------------ issuing
    def issue_server(self, cert_path, key_path, *, hosts=("localhost", "127.0.0.1"), days: int = 825):
        """The broker's certificate and key (``key_path`` mode 0600); SANs: ``localhost``,
        ``127.0.0.1``, ``::1`` and ``hosts`` (names or IP addresses).  Returns the certificate."""
        from cryptography import x509

        names, seen = [], set()
        for h in ("localhost", "127.0.0.1", "::1", *hosts):
            if not h or h in seen or h in ("0.0.0.0", "::"):          # wildcard binds are no names
                continue
            seen.add(h)
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                names.append(x509.DNSName(h))
        key = _new_key()
        cert = self._sign("mosquitto", key.public_key(), days=days, server=True, sans=names)
        atomic_write(key_path, _pem_key(key), mode=0o600)
        atomic_write(cert_path, _pem_cert(cert), mode=0o644)
        return cert

    def server_cert_ok(self, cert_path, key_path, hosts=(), *, min_days: int = 30) -> bool:
        """Whether ``cert_path`` is a server certificate of THIS CA covering ``hosts``, valid for at
        least ``min_days`` more days, and ``key_path`` exists (then it need not be re-issued)."""
        from cryptography import x509

        cert_path, key_path = Path(cert_path), Path(key_path)
        if not cert_path.exists() or not key_path.exists():
            return False
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except (ValueError, x509.ExtensionNotFound):
            return False
        have = {str(v) for v in san.get_values_for_type(x509.IPAddress)} | set(san.get_values_for_type(x509.DNSName))
        wanted = {str(ipaddress.ip_address(h)) if _is_ip(h) else h for h in hosts if h not in ("0.0.0.0", "::")}
        return (cert.issuer == self.cert.subject and wanted <= have
                and _validity(cert)[1] - _now() > min_days * _DAY)

    def issue_device(self, device_id: str, out_dir, *, days: int = 825, revoke_previous: bool = True) -> DeviceCertificate:
        """A client certificate with ``CN = device_id`` into ``out_dir``: ``device.crt``,
        ``device.key`` (0600), ``ca.crt``.  The device's earlier certificates are revoked
        (``superseded``) unless ``revoke_previous=False``."""
        device_id = validate_device_id(device_id)
        previous = [c.serial for c in self.issued() if c.common_name == device_id and not c.server]
        key = _new_key()
        cert = self._sign(device_id, key.public_key(), days=days, server=False)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        key_path = atomic_write(out / "device.key", _pem_key(key), mode=0o600)
        crt_path = atomic_write(out / "device.crt", _pem_cert(cert), mode=0o644)
        ca_path = atomic_write(out / "ca.crt", self.ca_pem, mode=0o644)
        if revoke_previous and previous:
            self.revoke(previous, reason="superseded")
        return DeviceCertificate(device_id, cert.serial_number, crt_path, key_path, ca_path)

    def issued(self) -> list[IssuedCertificate]:
        """Every certificate this CA issued (from ``issued/``), oldest first."""
        from cryptography import x509
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        out = []
        for p in sorted(self.issued_dir.glob("*.pem")):
            c = x509.load_pem_x509_certificate(p.read_bytes())
            cn = c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            try:
                server = ExtendedKeyUsageOID.SERVER_AUTH in c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            except x509.ExtensionNotFound:
                server = False
            out.append(IssuedCertificate(c.serial_number, str(cn[0].value) if cn else "", *_validity(c), server))
        return sorted(out, key=lambda c: (c.not_before, c.serial))

    # ------------------------------------------------------------------ revocation
    def revoked(self) -> dict[int, str]:
        """Serials revoked for good: ``{serial: reason}``."""
        if not self.revoked_path.exists():
            return {}
        return {int(k, 16): v for k, v in json.loads(self.revoked_path.read_text(encoding="utf-8")).items()}

    def revoke(self, serials, *, reason: str = "unspecified") -> None:
        """Revoke certificates for good (``reason``: an RFC 5280 reason name such as
        ``key_compromise``, ``superseded``, ``cessation_of_operation``)."""
        from cryptography import x509

        x509.ReasonFlags(reason)                                  # a valid reason name or ValueError
        current = self.revoked()
        current.update({int(s): reason for s in serials})
        atomic_write(self.revoked_path, json.dumps({f"{s:x}": r for s, r in sorted(current.items())}, indent=1),
                     mode=0o644)

    def crl_pem(self, statuses: dict[str, str] | None = None, *, days: int = 365) -> bytes:
        """The CRL (PEM): certificates revoked for good, plus every device certificate whose
        device is not ``active`` in ``statuses`` (``{device id: status}``, e.g. from the registry;
        ``None``: only the permanent revocations) — isolated: ``certificateHold``; retired or not
        registered: ``cessationOfOperation``.  Valid for ``days``."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes

        now = _now()
        entries = {s: x509.ReasonFlags(r) for s, r in self.revoked().items()}
        if statuses is not None:
            for c in self.issued():
                if c.server or c.serial in entries or c.not_after < now:
                    continue
                status = statuses.get(c.common_name)
                if status == "active":
                    continue
                entries[c.serial] = (x509.ReasonFlags.certificate_hold if status == "isolated"
                                     else x509.ReasonFlags.cessation_of_operation)
        b = (x509.CertificateRevocationListBuilder().issuer_name(self.cert.subject)
             .last_update(now - dt.timedelta(minutes=5)).next_update(now + int(days) * _DAY))
        for serial, reason in sorted(entries.items()):
            b = b.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now)
                .add_extension(x509.CRLReason(reason), critical=False).build())
        return b.sign(self._key, hashes.SHA256()).public_bytes(_encoding_pem())

    def write_crl(self, path, statuses: dict[str, str] | None = None, *, days: int = 365) -> Path:
        """:meth:`crl_pem` written atomically to ``path`` (mode 0644)."""
        return atomic_write(path, self.crl_pem(statuses, days=days), mode=0o644)


def _encoding_pem():
    from cryptography.hazmat.primitives import serialization

    return serialization.Encoding.PEM


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class ClientTLS:
    """What an MQTT client needs to connect over TLS: ``ca`` (the CA that signed the broker's
    certificate) and, for the certificate listener, its own ``cert`` and ``key``."""

    ca: Path
    cert: Path | None = None
    key: Path | None = None

    def __post_init__(self):
        if (self.cert is None) != (self.key is None):
            raise DeviceError("a client certificate needs both its certificate and its key")
        for p in (self.ca, self.cert, self.key):
            if p is not None and not Path(p).is_file():
                raise DeviceError(f"TLS file {p} does not exist")
        self.check()

    def check(self) -> None:
        """Load the files as a TLS client would: a file that is no PEM certificate or key, or a key
        that does not belong to the certificate, is refused here, naming the file."""
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            ctx.load_verify_locations(cafile=str(self.ca))
        except (ssl.SSLError, ValueError, UnicodeDecodeError):
            raise DeviceError(f"{self.ca}: not a PEM CA certificate") from None
        if self.cert is not None:
            try:
                ctx.load_cert_chain(str(self.cert), str(self.key))
            except (ssl.SSLError, ValueError, UnicodeDecodeError):
                raise DeviceError(f"{self.cert}: not a PEM certificate with its key {Path(self.key).name} "
                                  "(or the key does not belong to it)") from None

    @classmethod
    def from_dir(cls, folder, *, ca=None) -> ClientTLS:
        """``ca.crt``, ``device.crt``, ``device.key`` in ``folder`` (as written by
        :meth:`DeviceCA.issue_device`); ``ca`` overrides the CA file."""
        folder = Path(folder)
        return cls(Path(ca) if ca else folder / "ca.crt", folder / "device.crt", folder / "device.key")

    @property
    def has_certificate(self) -> bool:
        return self.cert is not None

    def apply(self, client) -> None:
        """``client.tls_set(...)`` on a paho client (server certificate and host name verified)."""
        import ssl

        client.tls_set(ca_certs=str(self.ca), certfile=str(self.cert) if self.cert else None,
                       keyfile=str(self.key) if self.key else None, cert_reqs=ssl.CERT_REQUIRED,
                       tls_version=ssl.PROTOCOL_TLS_CLIENT)
