"""Device alarms as records (seed §7.3 c 状态监控, e 故障定位): SQLAlchemy Core, SQLite by default,
PostgreSQL by URL.

An alarm follows ThingsBoard's life cycle — ``ACTIVE_UNACK`` → (acknowledge) ``ACTIVE_ACK`` →
(clear) ``CLEARED_ACK``, or ``ACTIVE_UNACK`` → (clear) ``CLEARED_UNACK`` → (acknowledge)
``CLEARED_ACK``.  Tables::

    alarms(id, device_id, type, severity, state, raised_at, updated_at, acknowledged_at,
           acknowledged_by, cleared_at, details JSON, cause)
    alarm_log(id, alarm_id, at, action, who, state, details JSON)    one row per transition

* at most one *active* alarm per (device, type): a partial unique index enforces it, and
  :meth:`AlarmStore.raise_` of an alarm that is already active updates it (severity, details,
  cause, ``updated_at``) instead of adding a second one — raising is idempotent;
* ``cause`` is the id of the fault the alarm is a consequence of (see
  :func:`workbench.devices.monitor.DeviceMonitor.localise`: ``collector:C-F01``, ``platform``), so a
  dashboard shows one problem, not thirty; the fault itself is an alarm of its subject (the
  collector, or ``*`` for the platform) whose ``details.fault_id`` is that id;
* times are naive UTC ``datetime`` (as in the device registry); ``at`` arguments accept epoch
  seconds, ``datetime`` (aware → UTC) or ``None`` (now).
"""
from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import sqlalchemy as sa

from workbench.core.errors import WorkbenchError
from workbench.core.sqlstore import create_engine, create_tables

__all__ = ["SEVERITIES", "STATES", "Alarm", "AlarmError", "AlarmStore", "to_utc"]

STATES = ("ACTIVE_UNACK", "ACTIVE_ACK", "CLEARED_UNACK", "CLEARED_ACK")
ACTIVE_STATES = ("ACTIVE_UNACK", "ACTIVE_ACK")
#: ThingsBoard's severities, most severe first
SEVERITIES = ("CRITICAL", "MAJOR", "MINOR", "WARNING", "INDETERMINATE")


class AlarmError(WorkbenchError, ValueError):
    pass


def to_utc(at) -> _dt.datetime:
    """Epoch seconds / datetime / None (now) → naive UTC datetime (microseconds kept)."""
    if at is None:
        return _dt.datetime.now(_dt.UTC).replace(tzinfo=None)
    if isinstance(at, _dt.datetime):
        return at.astimezone(_dt.UTC).replace(tzinfo=None) if at.tzinfo else at
    if hasattr(at, "to_pydatetime"):                    # pandas.Timestamp
        return to_utc(at.to_pydatetime())
    return _dt.datetime.fromtimestamp(float(at), _dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Alarm:
    id: int
    device_id: str
    type: str
    severity: str
    state: str
    raised_at: _dt.datetime
    updated_at: _dt.datetime
    acknowledged_at: _dt.datetime | None = None
    acknowledged_by: str | None = None
    cleared_at: _dt.datetime | None = None
    details: dict = field(default_factory=dict)
    cause: str | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def acknowledged(self) -> bool:
        return self.state.endswith("_ACK") and not self.state.endswith("UNACK")

    def to_dict(self) -> dict:
        out = asdict(self)
        for k in ("raised_at", "updated_at", "acknowledged_at", "cleared_at"):
            out[k] = out[k].isoformat() if out[k] else None
        return out


def _json(details) -> dict:
    if details is None:
        return {}
    return json.loads(json.dumps(dict(details), default=str, allow_nan=False))


class AlarmStore:
    """Alarm records in a SQL database (see the module doc)."""

    def __init__(self, url: str = "sqlite://", *, echo: bool = False):
        self.url = url
        self.engine = create_engine(url, echo=echo, error=AlarmError)
        md = self.metadata = sa.MetaData()
        self.alarms = sa.Table(
            "alarms", md,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("device_id", sa.String(64), nullable=False),
            sa.Column("type", sa.String(40), nullable=False),
            sa.Column("severity", sa.String(16), nullable=False),
            sa.Column("state", sa.String(16), nullable=False, index=True),
            sa.Column("raised_at", sa.DateTime, nullable=False),
            sa.Column("updated_at", sa.DateTime, nullable=False),
            sa.Column("acknowledged_at", sa.DateTime, nullable=True),
            sa.Column("acknowledged_by", sa.String(200), nullable=True),
            sa.Column("cleared_at", sa.DateTime, nullable=True),
            sa.Column("details", sa.JSON, nullable=False),
            sa.Column("cause", sa.String(200), nullable=True, index=True),
            sa.Index("ix_alarms_device_type", "device_id", "type"),
            # one active alarm per (device, type) — also under concurrent writers
            sa.Index("ux_alarms_active", "device_id", "type", unique=True,
                     sqlite_where=sa.text("cleared_at IS NULL"),
                     postgresql_where=sa.text("cleared_at IS NULL")),
        )
        self.log = sa.Table(
            "alarm_log", md,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("alarm_id", sa.Integer, sa.ForeignKey("alarms.id"), nullable=False, index=True),
            sa.Column("at", sa.DateTime, nullable=False),
            sa.Column("action", sa.String(16), nullable=False),
            sa.Column("who", sa.String(200), nullable=False),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("details", sa.JSON, nullable=False),
        )
        create_tables(md, self.engine, error=AlarmError)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _alarm(row) -> Alarm:
        r = row._mapping
        return Alarm(id=r["id"], device_id=r["device_id"], type=r["type"], severity=r["severity"],
                     state=r["state"], raised_at=r["raised_at"], updated_at=r["updated_at"],
                     acknowledged_at=r["acknowledged_at"], acknowledged_by=r["acknowledged_by"],
                     cleared_at=r["cleared_at"], details=dict(r["details"] or {}), cause=r["cause"])

    def _active_row(self, conn, device_id: str, type: str):
        t = self.alarms
        return conn.execute(sa.select(t).where(t.c.device_id == device_id, t.c.type == type,
                                               t.c.cleared_at.is_(None))).first()

    def _log(self, conn, alarm_id: int, at, action: str, who: str, state: str, details=None) -> None:
        conn.execute(sa.insert(self.log).values(alarm_id=alarm_id, at=at, action=action, who=who, state=state,
                                                details=_json(details)))

    def get(self, alarm_id: int) -> Alarm:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(self.alarms).where(self.alarms.c.id == int(alarm_id))).first()
        if row is None:
            raise AlarmError(f"alarm {alarm_id} not found")
        return self._alarm(row)

    # ------------------------------------------------------------------ transitions
    def raise_(self, device_id: str, type: str, *, severity: str = "MAJOR", at=None, details=None,
               cause: str | None = None, who: str = "monitor") -> Alarm:
        """Raise (or, if one is already active for ``device_id`` + ``type``, update) an alarm."""
        if severity not in SEVERITIES:
            raise AlarmError(f"severity {severity!r} must be one of {list(SEVERITIES)}")
        at = to_utc(at)
        details = _json(details)
        t = self.alarms
        for attempt in range(3):
            try:
                with self.engine.begin() as conn:
                    row = self._active_row(conn, device_id, type)
                    if row is not None:
                        changes = {"severity": severity, "details": details, "cause": cause, "updated_at": at}
                        conn.execute(sa.update(t).where(t.c.id == row.id).values(**changes))
                        self._log(conn, row.id, at, "update", who, row.state, {"severity": severity, "cause": cause})
                        alarm_id = row.id
                    else:
                        alarm_id = conn.execute(sa.insert(t).values(
                            device_id=device_id, type=type, severity=severity, state="ACTIVE_UNACK", raised_at=at,
                            updated_at=at, details=details, cause=cause)).inserted_primary_key[0]
                        self._log(conn, alarm_id, at, "raise", who, "ACTIVE_UNACK", details)
                return self.get(alarm_id)
            except sa.exc.IntegrityError:               # a concurrent writer raised it first: update it
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def acknowledge(self, alarm_id: int, who: str, *, at=None) -> Alarm:
        """Acknowledge (ACTIVE_UNACK → ACTIVE_ACK, CLEARED_UNACK → CLEARED_ACK); who and when are
        recorded.  Acknowledging an acknowledged alarm changes nothing."""
        if not who:
            raise AlarmError("acknowledge: 'who' is required (audit)")
        at = to_utc(at)
        t = self.alarms
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(t).where(t.c.id == int(alarm_id))).first()
            if row is None:
                raise AlarmError(f"alarm {alarm_id} not found")
            if row.state in ("ACTIVE_UNACK", "CLEARED_UNACK"):
                state = row.state.replace("UNACK", "ACK")
                conn.execute(sa.update(t).where(t.c.id == row.id).values(
                    state=state, acknowledged_at=at, acknowledged_by=who, updated_at=at))
                self._log(conn, row.id, at, "acknowledge", who, state)
        return self.get(alarm_id)

    def clear(self, device_id: str, type: str, *, at=None, details=None, who: str = "monitor") -> Alarm | None:
        """Clear the active alarm of ``device_id`` + ``type`` (ACTIVE_ACK → CLEARED_ACK, ACTIVE_UNACK →
        CLEARED_UNACK); ``None`` if none is active."""
        at = to_utc(at)
        t = self.alarms
        with self.engine.begin() as conn:
            row = self._active_row(conn, device_id, type)
            if row is None:
                return None
            state = "CLEARED_ACK" if row.state == "ACTIVE_ACK" else "CLEARED_UNACK"
            values = {"state": state, "cleared_at": at, "updated_at": at}
            if details:
                values["details"] = {**dict(row.details or {}), "cleared": _json(details)}
            conn.execute(sa.update(t).where(t.c.id == row.id).values(**values))
            self._log(conn, row.id, at, "clear", who, state, details)
        return self.get(row.id)

    def apply(self, events: Iterable) -> list[Alarm]:
        """Write :class:`workbench.devices.monitor.AlarmEvent` s (``raise``/``update`` → :meth:`raise_`,
        ``clear`` → :meth:`clear`); returns the alarms touched."""
        out = []
        for e in events:
            if e.action == "clear":
                a = self.clear(e.device_id, e.type, at=e.at, details=e.details or None)
            else:
                a = self.raise_(e.device_id, e.type, severity=e.severity, at=e.at, details=e.details, cause=e.cause)
            if a is not None:
                out.append(a)
        return out

    # ------------------------------------------------------------------ reads
    def active(self, device_id: str | None = None, *, cause: str | None = None) -> list[Alarm]:
        """Active alarms (ACTIVE_UNACK, ACTIVE_ACK), oldest first."""
        t = self.alarms
        q = sa.select(t).where(t.c.cleared_at.is_(None)).order_by(t.c.raised_at, t.c.id)
        if device_id is not None:
            q = q.where(t.c.device_id == device_id)
        if cause is not None:
            q = q.where(t.c.cause == cause)
        with self.engine.connect() as conn:
            return [self._alarm(r) for r in conn.execute(q)]

    def history(self, device: str | None = None, *, type: str | None = None) -> list[Alarm]:
        """Every alarm (any state), oldest first."""
        t = self.alarms
        q = sa.select(t).order_by(t.c.raised_at, t.c.id)
        if device is not None:
            q = q.where(t.c.device_id == device)
        if type is not None:
            q = q.where(t.c.type == type)
        with self.engine.connect() as conn:
            return [self._alarm(r) for r in conn.execute(q)]

    def transitions(self, alarm_id: int | None = None) -> list[dict]:
        """The transition log (``raise``, ``update``, ``acknowledge``, ``clear``; who, when, state)."""
        q = sa.select(self.log).order_by(self.log.c.id)
        if alarm_id is not None:
            q = q.where(self.log.c.alarm_id == int(alarm_id))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def dispose(self) -> None:
        self.engine.dispose()
