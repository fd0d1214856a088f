"""Device registry (seed §7.3 采集设备, §7.3 b 接入安全, §7.4 采集设备的管理): SQLAlchemy Core.

Every collection device — meter, collector/DTU — and every platform user of the MQTT broker (the
ingest gateway, the device manager) is one row:

=================  =========================================================================
device_id          MQTT user name and topic segment: ``[A-Za-z0-9][A-Za-z0-9._-]{0,63}`` — so
                   never ``/``, ``+``, ``#``, ``:``, ``$`` or whitespace (:func:`validate_device_id`)
identifier         industrial-internet identifier ``prefix/suffix`` (seed §10.2.2).  Default for a
                   meter: the identifiers' ``meter`` scheme (``<prefix>/meter.<device_id>``) — the
                   same identifier :func:`workbench.identifiers.model.records_from_boundary` gives
                   the meter's boundary node; other devices ``<prefix>/device.<device_id>``;
                   platform users may have none
type               :data:`DEVICE_TYPES` (``electricity_meter`` …, ``collector``) or a platform role
                   (:data:`PLATFORM_ROLES`: ``gateway``, ``manager``, ``admin``)
node_id            boundary node the device measures (``meters.csv`` ``node_id``; a collector: its
                   facility)
collector          device_id of the collector/gateway the device reports through, or empty
                   (needed to tell a dead meter from a dead collector, seed §7.3 e 故障定位)
quantities         ``{quantity: unit}`` it measures; units checked with :func:`workbench.core.units.parse_unit`
firmware           firmware/system version text (seed §7.4 a)
config, config_version   JSON configuration and its version (1 at provisioning, +1 per change;
                   the retained ``…/config`` downlink of a later step carries it)
status             ``active`` · ``isolated`` (access revoked: no password line, no ACL — seed
                   §7.4 b 接入隔离) · ``retired`` (removed from service)
password_hash      Mosquitto's own PBKDF2-SHA512 form ``$7$<iterations>$<salt b64>$<hash b64>``
                   (what ``mosquitto_passwd`` writes); the plain password is returned once by
                   :meth:`DeviceRegistry.provision` / :meth:`~DeviceRegistry.rotate_password` and
                   never stored
=================  =========================================================================

``audit(id, who, what, device_id, at, before JSON, after JSON)`` gets one row per change in the
same transaction as the change; password hashes appear there only as a short fingerprint.

Devices come from the master data (:meth:`DeviceRegistry.register_enterprise`, ``workbench devices
register --enterprise ID``: one per meter in service, the ``device_id`` link written back there) or,
for the demo's files, from a ``meters.csv`` (:meth:`DeviceRegistry.register_demo`).
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import hmac
import json
import math
import os
import re
import secrets
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import sqlalchemy as sa

from workbench.core.errors import WorkbenchError
from workbench.core.sqlstore import create_engine, create_tables

__all__ = [
    "DEVICE_TYPES",
    "PLATFORM_ROLES",
    "STATUSES",
    "Device",
    "DeviceError",
    "EnterpriseDevices",
    "DeviceExists",
    "DeviceNotFound",
    "DeviceRegistry",
    "generate_password",
    "mosquitto_hash",
    "read_credentials",
    "validate_device_id",
    "verify_mosquitto_hash",
    "write_credentials",
]

#: field device types (a ``collector`` is a data collector / DTU / protocol gateway in the plant)
DEVICE_TYPES = ("electricity_meter", "gas_meter", "steam_meter", "heat_meter", "water_meter",
                "flow_meter", "belt_scale", "sensor", "collector", "other")
#: broker users of the platform itself (not field devices) — their ACLs are role-wide, see
#: :mod:`workbench.devices.broker`: ``gateway`` ingests telemetry/status/acks, ``manager``
#: writes config and commands
PLATFORM_ROLES = ("gateway", "manager", "admin")
STATUSES = ("active", "isolated", "retired")
DEFAULT_ITERATIONS = 101            # mosquitto_passwd's default for $7$ (PBKDF2-SHA512)
SALT_BYTES = 12                     # mosquitto_passwd's salt length
DEVICE_SCHEME_TEMPLATE = "device.{device_id}"

_DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_QUANTITY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_FIELDS = ("identifier", "type", "node_id", "collector", "quantities", "firmware", "enterprise_id", "meter_id")
#: device types that measure a meter's register: at provisioning their ``meter_id`` link defaults to
#: the device id, stored as data (the gateway reads the link, it never derives it)
_METER_TYPES = ("electricity_meter", "gas_meter", "water_meter", "steam_meter", "heat_meter", "belt_scale",
                "flow_meter")


# --------------------------------------------------------------------------- errors


class DeviceError(WorkbenchError, ValueError):
    """A device or a change to it is invalid; the message names the device and the problem."""


class DeviceNotFound(DeviceError, KeyError):
    def __str__(self) -> str:                       # KeyError would repr() the message
        return self.args[0] if self.args else ""


class DeviceExists(DeviceError):
    pass


# --------------------------------------------------------------------------- validation


def validate_device_id(device_id: str) -> str:
    """Check that ``device_id`` can be an MQTT user name, a single topic level and a line in
    Mosquitto's password/ACL files: 1..64 characters ``A-Z a-z 0-9 . _ -``, starting with a
    letter or digit.  Raises :class:`DeviceError` naming the offending character."""
    if not isinstance(device_id, str) or not device_id:
        raise DeviceError(f"device id {device_id!r}: must be non-empty text")
    if _DEVICE_ID.fullmatch(device_id):
        return device_id
    for i, ch in enumerate(device_id):
        if ch in "/+#":
            raise DeviceError(f"device id {device_id!r}: {ch!r} at position {i} is an MQTT topic "
                              "separator/wildcard; use only letters, digits, '.', '_' and '-'")
        if ch.isspace():
            raise DeviceError(f"device id {device_id!r}: whitespace at position {i}; use only "
                              "letters, digits, '.', '_' and '-'")
    if len(device_id) > 64:
        raise DeviceError(f"device id {device_id!r}: longer than 64 characters")
    bad = next((c for c in device_id if not re.fullmatch(r"[A-Za-z0-9._-]", c)), device_id[0])
    raise DeviceError(f"device id {device_id!r}: character {bad!r} not allowed; use letters, digits, "
                      "'.', '_' and '-', starting with a letter or digit")


def _check_quantities(device_id: str, quantities) -> dict[str, str]:
    from workbench.core.units import UnitError, parse_unit

    if quantities is None:
        return {}
    if not isinstance(quantities, Mapping):
        raise DeviceError(f"device {device_id!r}: quantities must be a mapping quantity → unit")
    out = {}
    for q, unit in quantities.items():
        if not isinstance(q, str) or not _QUANTITY.fullmatch(q):
            raise DeviceError(f"device {device_id!r}: quantity name {q!r} must match {_QUANTITY.pattern}")
        if not isinstance(unit, str) or not unit.strip():
            raise DeviceError(f"device {device_id!r}: quantity {q!r} has no unit")
        try:
            parse_unit(unit)
        except UnitError as exc:
            raise DeviceError(f"device {device_id!r}: quantity {q!r}: {exc}") from None
        out[q] = unit.strip()
    return out


def _check_json(device_id: str, config) -> dict:
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise DeviceError(f"device {device_id!r}: config must be a JSON object")
    try:
        return json.loads(json.dumps(dict(config), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise DeviceError(f"device {device_id!r}: config is not JSON-serialisable ({exc})") from None


# --------------------------------------------------------------------------- credentials


def generate_password(nbytes: int = 24) -> str:
    """A random URL-safe password (``secrets.token_urlsafe``; 24 bytes = 192 bits)."""
    return secrets.token_urlsafe(nbytes)


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def mosquitto_hash(password: str, *, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None) -> str:
    """Mosquitto 2.0's password-file hash ``$7$<iterations>$<salt b64>$<hash b64>``:
    PBKDF2-HMAC-SHA512 of the UTF-8 password with a 12-byte random salt, 64-byte key, standard
    base64 with padding — byte-for-byte what ``mosquitto_passwd`` writes."""
    if not isinstance(password, str) or not password:
        raise DeviceError("password must be non-empty text")
    if iterations < 1:
        raise DeviceError("iterations must be ≥ 1")
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, 64)
    return f"$7${iterations}${_b64(salt)}${_b64(digest)}"


def verify_mosquitto_hash(password: str, stored: str) -> bool:
    """True if ``password`` matches the ``$7$…`` hash (constant-time comparison)."""
    parts = stored.split("$") if isinstance(stored, str) else []
    if len(parts) != 5 or parts[0] or parts[1] != "7" or not isinstance(password, str):
        return False
    try:
        iterations = int(parts[2])
        salt, digest = base64.b64decode(parts[3], validate=True), base64.b64decode(parts[4], validate=True)
    except ValueError:
        return False
    if not 1 <= iterations <= 10_000_000:
        return False
    got = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, len(digest) or 64)
    return hmac.compare_digest(got, digest)


def _fingerprint(password_hash: str | None) -> str | None:
    if not password_hash:
        return None
    return "sha256:" + hashlib.sha256(password_hash.encode("ascii")).hexdigest()[:16]


def atomic_write(path, data: str | bytes, *, mode: int = 0o644) -> Path:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder created with
    ``mode`` (so a secret is never readable by others, not even briefly), fsync, ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def write_credentials(path, mapping: Mapping[str, str], *, merge: bool = False) -> Path:
    """Write ``{device_id: password}`` as JSON to ``path`` with mode 0600, atomically (for the
    simulator and for handing credentials to installers).  ``merge=True`` keeps entries already
    in the file unless ``mapping`` replaces them."""
    data = dict(read_credentials(path)) if merge and Path(path).exists() else {}
    data.update({validate_device_id(k): str(v) for k, v in mapping.items()})
    return atomic_write(path, json.dumps(dict(sorted(data.items())), indent=1) + "\n", mode=0o600)


def read_credentials(path) -> dict[str, str]:
    """The ``{device_id: password}`` mapping written by :func:`write_credentials`."""
    raw = Path(path).read_bytes()
    if not raw.strip():
        raise DeviceError(f"{path}: the credentials file is empty (it holds a JSON object {{device: password}})")
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise DeviceError(f"{path}: not a credentials file (not UTF-8 text; it holds a JSON object "
                          "{device: password})") from None
    except json.JSONDecodeError as exc:
        raise DeviceError(f"{path}: not a credentials file (not valid JSON: {exc.msg.lower()} at line {exc.lineno}, "
                          f"column {exc.colno})") from None
    if not isinstance(data, dict):
        raise DeviceError(f"{path}: credentials file must hold a JSON object")
    bad = next((k for k, v in data.items() if not isinstance(v, str)), None)
    if bad is not None:
        raise DeviceError(f"{path}: not a credentials file: the entry {bad!r} is no password (a text)")
    return {str(k): str(v) for k, v in data.items()}


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Device:
    """One registry row (see module doc).  ``password_hash`` is the Mosquitto ``$7$`` hash."""

    device_id: str
    type: str
    identifier: str = ""
    node_id: str = ""
    collector: str = ""
    quantities: dict = field(default_factory=dict)
    firmware: str = ""
    config: dict = field(default_factory=dict)
    config_version: int = 1
    status: str = "active"
    password_hash: str | None = field(default=None, repr=False)
    credential_version: int = 0
    created: _dt.datetime | None = None
    updated: _dt.datetime | None = None
    enterprise_id: str = ""         # whose device (workbench.registry); "": the lake root's own
    meter_id: str = ""              # the lake meter whose register it reports; "": none

    @property
    def is_platform(self) -> bool:
        return self.type in PLATFORM_ROLES

    def public(self) -> dict:
        """The row without the password hash (a fingerprint instead) — for audit, listings, JSON."""
        out = asdict(self)
        out["credential"] = _fingerprint(out.pop("password_hash"))
        for k in ("created", "updated"):
            out[k] = out[k].isoformat() if out[k] else None
        return out


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC).replace(tzinfo=None, microsecond=0)


_METER_TYPES_BY_UNIT = {"kWh": "electricity_meter", "Nm3": "gas_meter", "m3": "water_meter",
                        "GJ": "heat_meter", "t": "belt_scale"}


def _meter_device_spec(r: Mapping, *, device_id: str, collector: str, prefix: str | None, firmware: str,
                       enterprise_id: str) -> dict:
    """The provisioning spec of the device that reports meter row ``r`` (a ``meters.csv`` / master-data
    row, empty cells as ""): the type from the unit (heat → steam_meter), one quantity — ``register``
    for a cumulative register, ``consumption`` for an interval meter — in the meter's unit, and the
    configuration ``{"register", "interval_s": 900, "serial", "item"[, "rollover"]}``."""
    unit = str(r["unit"])
    item = str(r.get("item", "") or "")
    type_ = "steam_meter" if item == "heat" else _METER_TYPES_BY_UNIT.get(unit, "other")
    register = str(r.get("register", "interval") or "") or "interval"
    quantity = "register" if register == "cumulative" else "consumption"
    config = {"register": register, "interval_s": 900, "serial": str(r.get("serial", "") or ""), "item": item}
    roll = r.get("rollover", "")
    if roll not in ("", None) and not (isinstance(roll, float) and math.isnan(roll)):
        config["rollover"] = float(roll)
    return {"device_id": device_id, "type": type_, "node_id": str(r["node_id"]), "prefix": prefix,
            "collector": collector, "quantities": {quantity: unit}, "firmware": firmware, "config": config,
            "enterprise_id": enterprise_id, "meter_id": str(r["meter_id"])}


@dataclass
class EnterpriseDevices:
    """What :meth:`DeviceRegistry.register_enterprise` did for one enterprise (device ids, except
    ``linked``: meter ids)."""

    enterprise_id: str
    device_prefix: str
    created: list = field(default_factory=list)       # provisioned now (meters' devices and collectors)
    updated: list = field(default_factory=list)       # meters' existing devices brought in line with it
    unchanged: list = field(default_factory=list)     # meters' existing devices as the master data has them
    retired: list = field(default_factory=list)       # devices of meters removed in the master data
    inactive: list = field(default_factory=list)      # devices of meters in service, left isolated/retired
    linked: list = field(default_factory=list)        # meters whose device_id link was written to the master data
    credentials: dict = field(default_factory=dict, repr=False)   # {device: password} of the new ones, shown once

    def as_dict(self) -> dict:
        return {"enterprise_id": self.enterprise_id, "device_prefix": self.device_prefix,
                **{k: len(getattr(self, k)) for k in ("created", "updated", "unchanged", "retired", "inactive",
                                                       "linked")}}


def _today(timezone: str | None) -> _dt.date:
    """Today in the enterprise's time zone (the meters' validity dates are its local dates)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return _dt.datetime.now(ZoneInfo(timezone)).date() if timezone else _dt.date.today()
    except (ZoneInfoNotFoundError, ValueError):
        return _dt.date.today()


class DeviceRegistry:
    """Devices and platform users in a SQL database (SQLite by default, PostgreSQL by URL).

    ``who`` on every write names the actor for the audit table.  ``prefix`` is the enterprise
    identifier prefix used when a device is provisioned without an explicit identifier.
    """

    def __init__(self, url: str = "sqlite://", *, prefix: str | None = None,
                 iterations: int = DEFAULT_ITERATIONS, echo: bool = False):
        self.url = url
        self.engine = create_engine(url, echo=echo, error=DeviceError)
        self.prefix = prefix
        self.iterations = iterations
        md = self.metadata = sa.MetaData()
        self.devices = sa.Table(
            "devices", md,
            sa.Column("device_id", sa.String(64), primary_key=True),
            sa.Column("identifier", sa.String(400), nullable=False),
            # Identifier.key (ASCII lower-cased) — unique when set; NULL for platform users without one
            sa.Column("identifier_key", sa.String(400), nullable=True, unique=True),
            sa.Column("type", sa.String(40), nullable=False, index=True),
            sa.Column("node_id", sa.String(200), nullable=False),
            sa.Column("collector", sa.String(64), nullable=False),
            sa.Column("quantities", sa.JSON, nullable=False),
            sa.Column("firmware", sa.String(200), nullable=False),
            sa.Column("config", sa.JSON, nullable=False),
            sa.Column("config_version", sa.Integer, nullable=False),
            sa.Column("status", sa.String(16), nullable=False, index=True),
            sa.Column("password_hash", sa.String(300), nullable=True),
            sa.Column("credential_version", sa.Integer, nullable=False),
            sa.Column("created", sa.DateTime, nullable=False),
            sa.Column("updated", sa.DateTime, nullable=False),
            sa.Column("enterprise_id", sa.String(64), nullable=False, server_default=""),
            sa.Column("meter_id", sa.String(128), nullable=False, server_default=""),
        )
        self.audit = sa.Table(
            "audit", md,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("who", sa.String(500), nullable=False),
            sa.Column("what", sa.String(40), nullable=False),
            sa.Column("device_id", sa.String(64), nullable=False, index=True),
            sa.Column("at", sa.DateTime, nullable=False),
            sa.Column("before", sa.JSON, nullable=True),
            sa.Column("after", sa.JSON, nullable=True),
        )
        # which gateway's persistent session holds a subscription to which device's telemetry
        # ('*': all devices) — a device is enabled at a running broker only once one does
        # (workbench.devices.access), so nothing it sends is acknowledged and then dropped
        self.subscriptions = sa.Table(
            "subscriptions", md,
            sa.Column("gateway", sa.String(64), primary_key=True),
            sa.Column("device_id", sa.String(64), primary_key=True),
            sa.Column("partition", sa.String(16), nullable=False),
            sa.Column("at", sa.DateTime, nullable=False),
        )
        create_tables(md, self.engine, error=DeviceError)
        self._migrate()

    def _migrate(self) -> None:
        """Registries made before the enterprise and meter links get the columns (empty)."""
        have = {c["name"] for c in sa.inspect(self.engine).get_columns("devices")}
        with self.engine.begin() as conn:
            for col, size in (("enterprise_id", 64), ("meter_id", 128)):
                if col not in have:
                    conn.execute(sa.text(f"ALTER TABLE devices ADD COLUMN {col} VARCHAR({size}) NOT NULL DEFAULT ''"))

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _device(row) -> Device:
        r = row._mapping if hasattr(row, "_mapping") else row
        return Device(device_id=r["device_id"], type=r["type"], identifier=r["identifier"],
                      node_id=r["node_id"], collector=r["collector"], quantities=dict(r["quantities"] or {}),
                      firmware=r["firmware"], config=dict(r["config"] or {}),
                      config_version=r["config_version"], status=r["status"],
                      password_hash=r["password_hash"], credential_version=r["credential_version"],
                      created=r["created"], updated=r["updated"], enterprise_id=r["enterprise_id"] or "",
                      meter_id=r["meter_id"] or "")

    def _load(self, conn, device_id: str, *, lock: bool = False) -> Device | None:
        q = sa.select(self.devices).where(self.devices.c.device_id == device_id)
        if lock and conn.dialect.name != "sqlite":
            q = q.with_for_update()
        row = conn.execute(q).first()
        return self._device(row) if row else None

    def _require(self, conn, device_id: str, *, lock: bool = True) -> Device:
        dev = self._load(conn, device_id, lock=lock)
        if dev is None:
            raise DeviceNotFound(f"device {device_id!r} is not registered")
        return dev

    def _audit(self, conn, who: str, what: str, device_id: str, before: Device | None,
               after: Device | None, at: _dt.datetime) -> None:
        conn.execute(sa.insert(self.audit).values(
            who=who, what=what, device_id=device_id, at=at,
            before=before.public() if before else None, after=after.public() if after else None))

    def _row(self, dev: Device) -> dict:
        from workbench.identifiers.model import parse_identifier

        key = parse_identifier(dev.identifier).key if dev.identifier else None
        return {"device_id": dev.device_id, "identifier": dev.identifier, "identifier_key": key,
                "type": dev.type, "node_id": dev.node_id, "collector": dev.collector,
                "quantities": dev.quantities, "firmware": dev.firmware, "config": dev.config,
                "config_version": dev.config_version, "status": dev.status,
                "password_hash": dev.password_hash, "credential_version": dev.credential_version,
                "created": dev.created, "updated": dev.updated, "enterprise_id": dev.enterprise_id,
                "meter_id": dev.meter_id}

    def _default_identifier(self, device_id: str, type: str, prefix: str | None, boundary,
                            meter_id: str | None = None) -> str:
        """The identifier of the meter node (the boundary's, or the ``meter.{id}`` scheme of the
        meter the device reports), or of the device (``device.{id}``) for other kinds."""
        node = meter_id or device_id
        return self._scheme_identifier(device_id, node, type, prefix, boundary)

    def _scheme_identifier(self, device_id: str, node: str, type: str, prefix: str | None, boundary) -> str:
        from workbench.identifiers.model import (
            DEFAULT_SCHEMES,
            Identifier,
            IdentifierError,
            SuffixScheme,
        )

        if boundary is not None and node in boundary.nodes.index:
            cell = boundary.nodes.at[node, "identifier"]
            if cell and boundary.nodes.at[node, "level"] == "meter":
                return cell                                  # what records_from_boundary uses
        prefix = prefix or self.prefix
        if not prefix:
            if type in PLATFORM_ROLES:
                return ""
            raise DeviceError(f"device {device_id!r}: no identifier given and no enterprise prefix to "
                              "derive one (pass identifier= or prefix=)")
        if type in PLATFORM_ROLES or type == "collector" or type == "other":
            suffix = SuffixScheme("device", DEVICE_SCHEME_TEMPLATE).make(device_id=device_id)
        else:
            suffix = DEFAULT_SCHEMES["meter"].make(meter_id=node)
        try:
            return str(Identifier(prefix, suffix))
        except IdentifierError as exc:
            raise DeviceError(f"device {device_id!r}: {exc}") from None

    def _build(self, conn, device_id: str, *, type: str, node_id: str = "", identifier: str | None = None,
               prefix: str | None = None, collector: str = "", quantities=None, firmware: str = "",
               config=None, status: str = "active", boundary=None, pending: Mapping[str, Device] | None = None,
               enterprise_id: str = "", meter_id: str | None = None, now: _dt.datetime) -> tuple[Device, str]:
        from workbench.identifiers.model import IdentifierError, parse_identifier

        validate_device_id(device_id)
        if type not in DEVICE_TYPES and type not in PLATFORM_ROLES:
            raise DeviceError(f"device {device_id!r}: type {type!r} must be one of "
                              f"{list(DEVICE_TYPES) + list(PLATFORM_ROLES)}")
        if status not in STATUSES:
            raise DeviceError(f"device {device_id!r}: status {status!r} must be one of {list(STATUSES)}")
        node_id = node_id or ""
        if boundary is not None and node_id and node_id not in boundary.nodes.index:
            raise DeviceError(f"device {device_id!r}: node {node_id!r} is not in the boundary")
        if meter_id is None:
            meter_id = device_id if type in _METER_TYPES else ""
        if identifier is None:
            identifier = self._default_identifier(device_id, type, prefix, boundary, meter_id)
        elif identifier:
            try:
                identifier = str(parse_identifier(identifier))
            except IdentifierError as exc:
                raise DeviceError(f"device {device_id!r}: {exc}") from None
        self._check_collector(conn, device_id, collector or "", pending)
        if enterprise_id:
            from workbench.registry.codes import CodeError, check_enterprise_id

            try:
                enterprise_id = check_enterprise_id(enterprise_id)
            except CodeError as exc:
                raise DeviceError(f"device {device_id!r}: {exc}") from None
        password = generate_password()
        dev = Device(device_id=device_id, type=type, identifier=identifier or "", node_id=node_id,
                     collector=collector or "", quantities=_check_quantities(device_id, quantities),
                     firmware=str(firmware or ""), config=_check_json(device_id, config), config_version=1,
                     status=status, password_hash=mosquitto_hash(password, iterations=self.iterations),
                     credential_version=1, created=now, updated=now, enterprise_id=enterprise_id or "",
                     meter_id=str(meter_id or ""))
        return dev, password

    def _check_collector(self, conn, device_id: str, collector: str, pending=None) -> None:
        if not collector:
            return
        if collector == device_id:
            raise DeviceError(f"device {device_id!r}: cannot report through itself")
        col = (pending or {}).get(collector) or self._load(conn, collector)
        if col is None:
            raise DeviceError(f"device {device_id!r}: collector {collector!r} is not registered")
        if col.type != "collector":
            raise DeviceError(f"device {device_id!r}: {collector!r} is a {col.type}, not a collector")

    def _identifier_taken(self, conn, dev: Device) -> bool:
        key = self._row(dev)["identifier_key"]
        if key is None:
            return False
        q = sa.select(self.devices.c.device_id).where(self.devices.c.identifier_key == key,
                                                      self.devices.c.device_id != dev.device_id)
        return conn.execute(q).first() is not None

    def _insert(self, conn, dev: Device) -> None:
        # checked first (no SAVEPOINTs: pysqlite's are unreliable); a race still ends in the
        # database's unique constraints and rolls the whole transaction back
        if self._load(conn, dev.device_id) is not None:
            raise DeviceExists(f"device {dev.device_id!r} is already registered")
        if self._identifier_taken(conn, dev):
            raise DeviceExists(f"device {dev.device_id!r}: identifier {dev.identifier!r} is already "
                               "given to another device")
        conn.execute(sa.insert(self.devices).values(**self._row(dev)))

    def _save(self, conn, before: Device, after: Device, what: str, who: str) -> Device:
        row = self._row(after)
        row.pop("device_id")
        row.pop("created")
        if after.identifier != before.identifier and self._identifier_taken(conn, after):
            raise DeviceExists(f"device {after.device_id!r}: identifier {after.identifier!r} is already "
                               "given to another device")
        conn.execute(sa.update(self.devices).where(self.devices.c.device_id == before.device_id).values(**row))
        self._audit(conn, who, what, after.device_id, before, after, after.updated)
        return after

    # ------------------------------------------------------------------ provisioning
    def provision(self, device_id: str, *, type: str, node_id: str = "", identifier: str | None = None,
                  prefix: str | None = None, collector: str = "", quantities: Mapping[str, str] | None = None,
                  firmware: str = "", config: Mapping | None = None, status: str = "active",
                  boundary=None, enterprise_id: str = "", meter_id: str | None = None, who: str = "system") -> str:
        """Register a device with a fresh random password; returns the password — the only time it
        is available (only its Mosquitto hash is stored).  Raises :class:`DeviceExists` if the
        device id or identifier is taken, :class:`DeviceError` for invalid fields.

        ``boundary`` (a :class:`workbench.core.boundary.Boundary`), when given, checks ``node_id`` and
        supplies the identifier of the meter node named ``device_id``, if there is one.
        ``enterprise_id``: whose device (its data goes to that enterprise's lake); ``meter_id``:
        the lake meter whose register it reports (default: the device id for meter types, none
        for other devices) — both stored as explicit links."""
        return self.provision_many([{"device_id": device_id, "type": type, "node_id": node_id, "identifier": identifier,
                                         "prefix": prefix, "collector": collector, "quantities": quantities,
                                         "firmware": firmware, "config": config, "status": status,
                                         "enterprise_id": enterprise_id, "meter_id": meter_id}],
                                   boundary=boundary, who=who)[device_id]

    def provision_many(self, specs: Iterable[Mapping], *, boundary=None, who: str = "system") -> dict[str, str]:
        """Register many devices in ONE transaction (all or none); ``specs`` are keyword mappings
        for :meth:`provision`.  Collectors are inserted before the devices that report through
        them.  Returns ``{device_id: password}``."""
        specs = [dict(s) for s in specs]
        specs.sort(key=lambda s: s.get("type") != "collector")
        out: dict[str, str] = {}
        now = _now()
        with self.engine.begin() as conn:
            pending: dict[str, Device] = {}
            for spec in specs:
                device_id = spec.pop("device_id")
                if device_id in pending:
                    raise DeviceExists(f"device {device_id!r} given twice")
                dev, password = self._build(conn, device_id, boundary=boundary, pending=pending, now=now, **spec)
                self._insert(conn, dev)
                self._audit(conn, who, "provision", device_id, None, dev, now)
                pending[device_id] = dev
                out[device_id] = password
        return out

    def register_demo(self, meters, prefix: str | None = None, boundary=None, *, who: str = "system",
                      firmware: str = "demo-1.0", enterprise_id: str = "", device_prefix: str = "") -> dict[str, str]:
        """One device per demo meter plus one collector per facility (seed §7.3), in one transaction.

        ``meters`` is ``meters.csv`` (path or DataFrame, see ``docs/architecture.md``).  Each meter
        becomes a device ``device_id = meter_id`` with node ``node_id``, the type from its unit
        (kWh → electricity_meter, Nm3 → gas_meter, GJ → steam_meter for heat, t → belt_scale),
        quantities ``{"register": unit}`` for cumulative registers or ``{"consumption": unit}``
        for interval meters, and config ``{"register", "interval_s": 900, "rollover", "serial",
        "item"}``.  It reports through collector ``C-<facility>`` (facility = the node's first
        segment, or ``boundary.facility_of``; ``C-ENT`` for enterprise-level meters).  Meters with
        a ``removed`` date are registered ``retired`` (no broker access) and get no entry in the
        returned ``{device_id: password}`` mapping.  ``enterprise_id``: whose meters they are;
        ``device_prefix``: put before every device id (device ids are one namespace across the
        broker's enterprises; each device keeps its meter id as its ``meter_id`` link).
        """
        import pandas as pd

        from workbench.core.meters import read_meters

        m = read_meters(meters) if not isinstance(meters, pd.DataFrame) else meters.copy()
        missing = [c for c in ("meter_id", "node_id", "unit") if c not in m.columns]
        if missing:
            raise DeviceError(f"meters table lacks columns {missing}")
        m = m.astype(object).where(m.notna(), "")
        if boundary is not None:
            facility = dict(zip(m["node_id"], boundary.facility_of(m["node_id"])))
        else:
            facility = {n: n.split(".")[0] for n in m["node_id"]}
        specs = []
        for fac in sorted(set(facility.values())):
            specs.append({"device_id": f"{device_prefix}C-{fac}", "type": "collector", "node_id": fac,
                          "prefix": prefix, "firmware": firmware, "config": {"poll_interval_s": 60},
                          "enterprise_id": enterprise_id})
        retired = set()
        for r in m.to_dict("records"):
            status = "retired" if str(r.get("removed", "")).strip() else "active"
            device_id = f"{device_prefix}{r['meter_id']}"
            if status == "retired":
                retired.add(device_id)
            specs.append({**_meter_device_spec(r, device_id=device_id, collector=f"{device_prefix}C-{facility[r['node_id']]}",
                                               prefix=prefix, firmware=firmware, enterprise_id=enterprise_id),
                          "status": status})
        creds = self.provision_many(specs, boundary=boundary, who=who)
        return {k: v for k, v in creds.items() if k not in retired}

    def register_enterprise(self, master, enterprise_id: str, *, device_prefix: str | None = None,
                            who: str = "system", firmware: str = "", today: _dt.date | None = None
                            ) -> EnterpriseDevices:
        """Provision the devices of an enterprise's meters from the master data
        (:class:`workbench.registry.MasterData`) — the file-free counterpart of :meth:`register_demo`.

        For every meter in service today (``installed`` ≤ today < ``removed``, the enterprise's
        time zone): its device is the one the meter's ``device_id`` link names; without a link, the
        device already linked to that enterprise and meter in this registry, else a new one
        ``device_prefix + meter_id`` — and the link is then written back to the master data
        (audited there), so it is data from then on.  ``device_prefix`` defaults to
        ``"<enterprise_id>."``: device ids are one namespace across the broker's enterprises, so two
        enterprises' meter ``M0001`` become ``ent-a.M0001`` and ``ent-b.M0001``.  A device id that
        exists with another enterprise or meter link is an error, never taken over.

        Each device gets the enterprise and meter links, the meter's node, its identifier
        (:func:`workbench.identifiers.model.meter_identifiers`, as the identifier node registers it),
        type, quantity and unit, configuration as :meth:`register_demo` gives them, and reports
        through one collector per facility (the enterprise's collector of that facility if there is
        one, else a new ``device_prefix + "C-" + facility``).  Existing devices keep their password;
        changed master data updates them (audited); an isolated or retired device of a meter in
        service stays so (``inactive``: an operator's decision).  The device of a meter removed in
        the master data (``removed`` ≤ today) is retired — its history stays.  Meters installed
        later are left for a later run.  Everything is checked before anything is written; new
        devices are provisioned in one transaction.  Re-running changes nothing.

        Raises :class:`DeviceError` (no unit, a node not in the boundary, a device id in use by
        another meter, identifiers) or the master data's ``RegistryError`` (unknown enterprise).
        """
        from workbench.identifiers.model import IdentifierError, meter_identifiers

        ent = master.enterprise(enterprise_id)
        eid = ent["enterprise_id"]
        prefix = ent.get("identifier_prefix") or self.prefix
        if not prefix:
            raise DeviceError(f"enterprise {eid!r} has no identifier prefix in the master data")
        device_prefix = f"{eid}." if device_prefix is None else device_prefix
        boundary = master.boundary(eid)
        meters = master.meters(eid)
        meters = meters.astype(object).where(meters.notna(), "")
        day = (today or _today(ent.get("timezone"))).isoformat()
        try:
            idents = meter_identifiers(boundary, meters, prefix)
        except IdentifierError as exc:
            raise DeviceError(f"enterprise {eid!r}: {exc}") from None
        out = EnterpriseDevices(eid, device_prefix)

        devices = {d.device_id: d for d in self.list()}
        linked: dict[str, list[Device]] = {}        # meter → devices linked to it (the registry's links)
        collectors: dict[str, list[Device]] = {}    # facility → the enterprise's collectors there
        for d in devices.values():
            if d.enterprise_id != eid:
                continue
            if d.type == "collector" and d.status != "retired":
                collectors.setdefault(d.node_id, []).append(d)
            elif d.meter_id and d.type not in PLATFORM_ROLES:
                linked.setdefault(d.meter_id, []).append(d)

        def where(meter: str) -> str:
            return f"enterprise {eid!r}, meter {meter!r}"

        def conflict(device_id: str, meter: str, why: str) -> DeviceError:
            return DeviceError(f"{where(meter)}: device {device_id!r} {why}; set the meter's device_id in the "
                               "master data or choose another --device-prefix")

        facility_of: dict[str, str] = {}                  # new collector → its facility

        def collector_of(fac: str) -> str:
            mine = {d.device_id for d in collectors.get(fac, [])}
            derived = f"{device_prefix}C-{fac}"
            if derived in mine or len(mine) != 1:
                if derived in devices and derived not in mine:
                    d = devices[derived]
                    raise DeviceError(f"enterprise {eid!r}: collector id {derived!r} is taken by a {d.type} of "
                                      f"enterprise {d.enterprise_id!r} at {d.node_id!r}; choose another "
                                      "--device-prefix")
                facility_of[derived] = fac
                return derived
            return next(iter(mine))

        rows = meters.to_dict("records")
        removed = {str(r["meter_id"]) for r in rows if r["removed"] and r["removed"] <= day}
        wanted: list[tuple[dict, Device | None]] = []     # (spec, the existing device or None)
        links: dict[str, str] = {}
        retire: list[str] = []
        taken: dict[str, str] = {}                        # device → meter, within this run
        for r in rows:
            meter, link = str(r["meter_id"]), str(r["device_id"] or "")
            mine = linked.get(meter, [])
            if meter in removed:
                targets = [link] if link else [d.device_id for d in mine]
                retire += [t for t in targets if t in devices and devices[t].status != "retired"]
                if not link and len(targets) == 1:
                    links[meter] = targets[0]
                continue
            if r["installed"] and r["installed"] > day:
                continue                                   # not in service yet
            if not str(r["unit"]).strip():
                raise DeviceError(f"{where(meter)}: no unit in the master data (a device needs the unit of "
                                  "what it measures)")
            if r["node_id"] not in boundary.nodes.index:
                raise DeviceError(f"{where(meter)}: node {r['node_id']!r} is not in the enterprise's boundary")
            if link:
                device_id = link
            else:
                live = [d.device_id for d in mine if d.status != "retired"] or [d.device_id for d in mine]
                derived = f"{device_prefix}{meter}"
                if len(live) > 1 and derived not in live:
                    raise DeviceError(f"{where(meter)}: devices {sorted(live)} are all linked to it; set the "
                                      "meter's device_id in the master data")
                device_id = derived if (not live or derived in live) else live[0]
                links[meter] = device_id
            validate_device_id(device_id)
            if device_id in taken:
                raise DeviceError(f"{where(meter)}: device {device_id!r} is also meter {taken[device_id]!r}'s")
            taken[device_id] = meter
            spec = _meter_device_spec(r, device_id=device_id, collector=collector_of(
                boundary.ancestor_at(r["node_id"], "facility")), prefix=prefix, firmware=firmware, enterprise_id=eid)
            spec["identifier"] = str(idents[meter])
            _check_quantities(device_id, spec["quantities"])
            have = devices.get(device_id)
            if have is not None:
                if have.type in PLATFORM_ROLES or have.type == "collector":
                    raise conflict(device_id, meter, f"is a {have.type}")
                if (have.enterprise_id, have.meter_id) != (eid, meter):
                    # taken over only when the master data names it and it has no links yet or
                    # reported a meter of this enterprise that was since removed (a replacement)
                    if not (link and have.enterprise_id in ("", eid)
                            and (have.meter_id in ("", meter) or have.meter_id in removed)):
                        raise conflict(device_id, meter, f"is linked to enterprise {have.enterprise_id!r}, "
                                                         f"meter {have.meter_id!r}")
            wanted.append((spec, have))

        # --- writes: new collectors and devices in one transaction, then updates, retirements, links
        new = [spec for spec, have in wanted if have is None]
        for col in sorted({s["collector"] for s, _ in wanted} - set(devices)):
            new.append({"device_id": col, "type": "collector", "node_id": facility_of[col], "prefix": prefix,
                        "firmware": firmware, "config": {"poll_interval_s": 60}, "enterprise_id": eid})
        if new:
            out.credentials = self.provision_many(new, boundary=boundary, who=who)
            out.created = sorted(out.credentials)
        for spec, have in wanted:
            if have is None:
                continue
            fields = {k: spec[k] for k in ("type", "node_id", "collector", "quantities", "identifier",
                                           "enterprise_id", "meter_id")}
            changed = have
            if any(getattr(have, k) != v for k, v in fields.items()):
                changed = self.update(have.device_id, who=who, boundary=boundary, **fields)
            version = self.set_config(have.device_id, spec["config"], who=who)
            if changed is not have or version != have.config_version:
                out.updated.append(have.device_id)
            else:
                out.unchanged.append(have.device_id)
            if have.status != "active":
                out.inactive.append(have.device_id)
        for device_id in sorted(set(retire) - set(taken)):        # a device moved to a successor stays
            self.set_status(device_id, "retired", who=who)
            out.retired.append(device_id)
        if links:
            out.linked = master.set_meter_devices(eid, links, who=who)
        return out

    def ensure_platform_users(self, users: Mapping[str, str], *, who: str = "system") -> dict[str, str]:
        """Make sure each ``{user: role}`` (role in :data:`PLATFORM_ROLES`) exists; returns
        ``{user: password}`` for the users created now (existing ones keep their password — use
        :meth:`rotate_password`).  An existing user with another type is an error."""
        new = {}
        for user, role in users.items():
            if role not in PLATFORM_ROLES:
                raise DeviceError(f"platform user {user!r}: role {role!r} must be one of {list(PLATFORM_ROLES)}")
            dev = self.find(user)
            if dev is None:
                new[user] = {"device_id": user, "type": role, "identifier": ""}
            elif dev.type != role:
                raise DeviceError(f"platform user {user!r} exists as a {dev.type}, not a {role}")
        return self.provision_many(new.values(), who=who) if new else {}

    # ------------------------------------------------------------------ changes
    def rotate_password(self, device_id: str, *, who: str = "system") -> str:
        """A new random password for the device (the old one stops working once the broker's
        password file is regenerated and reloaded); returns it once."""
        password = generate_password()
        with self.engine.begin() as conn:
            before = self._require(conn, device_id)
            after = _replace(before, password_hash=mosquitto_hash(password, iterations=self.iterations),
                             credential_version=before.credential_version + 1, updated=_now())
            self._save(conn, before, after, "rotate_password", who)
        return password

    def set_status(self, device_id: str, status: str, *, who: str = "system") -> Device:
        """``active`` · ``isolated`` (接入隔离, seed §7.4 b: the broker config then has no password
        line and no ACL for it) · ``retired``."""
        if status not in STATUSES:
            raise DeviceError(f"device {device_id!r}: status {status!r} must be one of {list(STATUSES)}")
        with self.engine.begin() as conn:
            before = self._require(conn, device_id)
            if before.status == status:
                return before
            return self._save(conn, before, _replace(before, status=status, updated=_now()), f"status:{status}", who)

    def set_config(self, device_id: str, config: Mapping, *, who: str = "system") -> int:
        """Replace the device's configuration (seed §7.4 a 配置远程更新); the version increments
        when the configuration changes.  Returns the (possibly unchanged) version."""
        with self.engine.begin() as conn:
            before = self._require(conn, device_id)
            new = _check_json(device_id, config)
            if new == before.config:
                return before.config_version
            after = _replace(before, config=new, config_version=before.config_version + 1, updated=_now())
            self._save(conn, before, after, "config", who)
            return after.config_version

    def record(self, device_id: str, what: str, details: Mapping | None = None, *, who: str = "system") -> None:
        """An audit row for a management event that changes no field (a pushed configuration
        acknowledged, a command sent or answered); ``details`` go in ``after``."""
        with self.engine.begin() as conn:
            self._require(conn, device_id, lock=False)
            conn.execute(sa.insert(self.audit).values(who=who, what=what, device_id=device_id, at=_now(),
                                                      before=None, after=_check_json(device_id, details or {})))

    def set_firmware(self, device_id: str, firmware: str, *, who: str = "system") -> Device:
        """Record the device's firmware/system version (seed §7.4 a 系统版本远程管理)."""
        return self.update(device_id, firmware=firmware, who=who)

    def update(self, device_id: str, *, who: str = "system", boundary=None, **changes) -> Device:
        """Change ``identifier``, ``type``, ``node_id``, ``collector``, ``quantities`` or
        ``firmware`` (validated as at provisioning); one audit row for the whole change."""
        from workbench.identifiers.model import IdentifierError, parse_identifier

        unknown = sorted(set(changes) - set(_FIELDS))
        if unknown:
            raise DeviceError(f"device {device_id!r}: cannot update {unknown}; updatable: {list(_FIELDS)} "
                              "(config: set_config, status: set_status, password: rotate_password)")
        with self.engine.begin() as conn:
            before = self._require(conn, device_id)
            new = {}
            for k, v in changes.items():
                if k == "quantities":
                    v = _check_quantities(device_id, v)
                elif k == "type" and v not in DEVICE_TYPES and v not in PLATFORM_ROLES:
                    raise DeviceError(f"device {device_id!r}: type {v!r} is not a known type")
                elif k == "identifier" and v:
                    try:
                        v = str(parse_identifier(v))
                    except IdentifierError as exc:
                        raise DeviceError(f"device {device_id!r}: {exc}") from None
                elif k == "collector":
                    self._check_collector(conn, device_id, v or "")
                elif k == "node_id" and boundary is not None and v and v not in boundary.nodes.index:
                    raise DeviceError(f"device {device_id!r}: node {v!r} is not in the boundary")
                elif k == "enterprise_id" and v:
                    from workbench.registry.codes import CodeError, check_enterprise_id

                    try:
                        v = check_enterprise_id(v)
                    except CodeError as exc:
                        raise DeviceError(f"device {device_id!r}: {exc}") from None
                new[k] = "" if v is None else v
            if all(getattr(before, k) == v for k, v in new.items()):
                return before
            return self._save(conn, before, _replace(before, updated=_now(), **new), "update", who)

    def remove(self, device_id: str, *, who: str = "system") -> None:
        """Delete the device (audited); devices reporting through it must be moved first."""
        with self.engine.begin() as conn:
            before = self._require(conn, device_id)
            users = conn.execute(sa.select(self.devices.c.device_id)
                                 .where(self.devices.c.collector == device_id)).scalars().all()
            if users:
                raise DeviceError(f"device {device_id!r}: {len(users)} devices report through it "
                                  f"({', '.join(sorted(users)[:5])} …)")
            conn.execute(sa.delete(self.devices).where(self.devices.c.device_id == device_id))
            self._audit(conn, who, "remove", device_id, before, None, _now())

    # ------------------------------------------------------------------ reads
    def find(self, device_id: str) -> Device | None:
        with self.engine.connect() as conn:
            return self._load(conn, device_id)

    def get(self, device_id: str) -> Device:
        """The device; raises :class:`DeviceNotFound`."""
        with self.engine.connect() as conn:
            return self._require(conn, device_id, lock=False)

    def list(self, *, status: str | None = None, type: str | None = None, collector: str | None = None) -> list[Device]:
        """Devices ordered by id, optionally filtered."""
        q = sa.select(self.devices).order_by(self.devices.c.device_id)
        if status is not None:
            q = q.where(self.devices.c.status == status)
        if type is not None:
            q = q.where(self.devices.c.type == type)
        if collector is not None:
            q = q.where(self.devices.c.collector == collector)
        with self.engine.connect() as conn:
            return [self._device(r) for r in conn.execute(q)]

    def verify_password(self, device_id: str, password: str) -> bool:
        """Whether ``password`` is the device's current password (what the broker checks)."""
        dev = self.find(device_id)
        return bool(dev and dev.password_hash and verify_mosquitto_hash(password, dev.password_hash))

    def audit_log(self, device_id: str | None = None) -> list[dict]:
        """Audit rows (oldest first): ``id, who, what, device_id, at, before, after``."""
        q = sa.select(self.audit).order_by(self.audit.c.id)
        if device_id is not None:
            q = q.where(self.audit.c.device_id == device_id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    # ------------------------------------------------------------------ gateway subscriptions
    def set_subscriptions(self, gateway: str, devices: Iterable[str], *, partition: str = "0/1") -> None:
        """Record that ``gateway``'s session now holds exactly the telemetry subscriptions of
        ``devices`` (``"*"``: the wildcard, all devices) — the gateway calls it after its SUBACKs
        and after unsubscribing."""
        wanted = set(devices)
        t = self.subscriptions
        with self.engine.begin() as conn:
            have = set(conn.execute(sa.select(t.c.device_id).where(t.c.gateway == gateway)).scalars())
            gone = have - wanted
            if gone:
                for chunk in _chunks(sorted(gone), 500):
                    conn.execute(sa.delete(t).where(t.c.gateway == gateway, t.c.device_id.in_(chunk)))
            new = wanted - have
            if new:
                now = _now()
                conn.execute(sa.insert(t), [{"gateway": gateway, "device_id": d, "partition": partition, "at": now}
                                            for d in sorted(new)])

    def subscriptions_of(self, gateway: str | None = None) -> dict[str, set[str]]:
        """``{gateway: {device ids or "*"}}`` of active gateway users (all, or one)."""
        t, d = self.subscriptions, self.devices
        q = (sa.select(t.c.gateway, t.c.device_id).join(d, d.c.device_id == t.c.gateway)
             .where(d.c.status == "active", d.c.type == "gateway"))
        if gateway is not None:
            q = q.where(t.c.gateway == gateway)
        out: dict[str, set[str]] = {}
        with self.engine.connect() as conn:
            for g, dev in conn.execute(q):
                out.setdefault(g, set()).add(dev)
        return out

    def coverage(self) -> dict[str, set[str]] | None:
        """``{device_id: {gateways whose session holds its telemetry topic}}`` (a wildcard gateway
        covers every device: key ``"*"``), or ``None`` while no gateway has ever subscribed (a new
        deployment: nothing to wait for yet)."""
        with self.engine.connect() as conn:
            if conn.execute(sa.select(sa.func.count()).select_from(self.subscriptions)).scalar() == 0:
                return None
        out: dict[str, set[str]] = {}
        for g, devices in self.subscriptions_of().items():
            for dev in devices:
                out.setdefault(dev, set()).add(g)
        return out

    def dispose(self) -> None:
        self.engine.dispose()


def _chunks(items: list, n: int):
    for k in range(0, len(items), n):
        yield items[k:k + n]


def _replace(dev: Device, **changes) -> Device:
    from dataclasses import replace

    return replace(dev, **changes)
